package detect

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/emberwatch/emberwatch"
)

// SyntaxError is a rule that does not parse. Pos is the byte offset (from 0)
// in the expression where the problem was found.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("at column %d: %s", e.Pos+1, e.Msg) }

// Rule is a parsed boolean expression over window features of several
// series. The grammar, loosest binding first:
//
//	expr    = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | "(" expr ")" | compare
//	compare = operand ( ">" | ">=" | "<" | "<=" | "==" | "!=" ) operand
//	operand = number | series "." aggregate
type Rule struct {
	root   node
	series []string
}

// Series lists the series the rule reads, sorted, without duplicates.
func (r *Rule) Series() []string { return r.series }

// Eval evaluates the rule against the latest features of each series. It
// reports false if a series it needs is missing from latest.
func (r *Rule) Eval(latest map[string]*emberwatch.Features) bool {
	for _, s := range r.series {
		if _, ok := latest[s]; !ok {
			return false
		}
	}
	return r.root.eval(latest)
}

// Explain renders every comparison with the values it saw, e.g.
// "temperature.delta=9.1 > 5".
func (r *Rule) Explain(latest map[string]*emberwatch.Features) string {
	var parts []string
	r.root.walk(func(c *compare) {
		parts = append(parts, c.explain(latest))
	})
	return strings.Join(parts, ", ")
}

// ParseRule parses expr; a *SyntaxError says where it went wrong.
func ParseRule(expr string) (*Rule, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: expr}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
	}
	r := &Rule{root: n}
	n.walk(func(c *compare) {
		for _, o := range []operand{c.l, c.r} {
			if o.series != "" && !slices.Contains(r.series, o.series) {
				r.series = append(r.series, o.series)
			}
		}
	})
	if len(r.series) == 0 {
		return nil, &SyntaxError{Pos: 0, Msg: "rule reads no series"}
	}
	slices.Sort(r.series)
	return r, nil
}

type node interface {
	eval(map[string]*emberwatch.Features) bool
	walk(func(*compare))
}

type logic struct {
	and  bool
	l, r node
}

func (n *logic) eval(m map[string]*emberwatch.Features) bool {
	if n.and {
		return n.l.eval(m) && n.r.eval(m)
	}
	return n.l.eval(m) || n.r.eval(m)
}
func (n *logic) walk(f func(*compare)) { n.l.walk(f); n.r.walk(f) }

type not struct{ x node }

func (n *not) eval(m map[string]*emberwatch.Features) bool { return !n.x.eval(m) }
func (n *not) walk(f func(*compare))                       { n.x.walk(f) }

type operand struct {
	series, feature string
	num             float64
}

func (o operand) value(m map[string]*emberwatch.Features) (float64, bool) {
	if o.series == "" {
		return o.num, true
	}
	f, ok := m[o.series]
	if !ok {
		return 0, false
	}
	return f.Value(o.feature)
}

func (o operand) String() string {
	if o.series == "" {
		return strconv.FormatFloat(o.num, 'g', -1, 64)
	}
	return o.series + "." + o.feature
}

type compare struct {
	op   string
	l, r operand
}

func (c *compare) eval(m map[string]*emberwatch.Features) bool {
	a, ok1 := c.l.value(m)
	b, ok2 := c.r.value(m)
	if !ok1 || !ok2 {
		return false
	}
	switch c.op {
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "<":
		return a < b
	case "<=":
		return a <= b
	case "==":
		return a == b
	}
	return a != b
}

func (c *compare) walk(f func(*compare)) { f(c) }

func (c *compare) explain(m map[string]*emberwatch.Features) string {
	side := func(o operand) string {
		if o.series == "" {
			return o.String()
		}
		v, ok := o.value(m)
		if !ok {
			return o.String() + "=?"
		}
		return fmt.Sprintf("%s=%.4g", o, v)
	}
	s := side(c.l) + " " + c.op + " " + side(c.r)
	if !c.eval(m) {
		s += " (not met)" // so that a resolved alert does not read as a claim
	}
	return s
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokNum
	tokOp
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tokLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tokRParen, ")", i})
			i++
		case strings.ContainsRune("<>=!", rune(c)):
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			op := s[i:j]
			if op == "=" || op == "!" {
				return nil, &SyntaxError{Pos: i, Msg: fmt.Sprintf("unknown operator %q (use ==, !=, <, <=, >, >=)", op)}
			}
			toks = append(toks, token{tokOp, op, i})
			i = j
		case c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			toks = append(toks, token{tokNum, s[i:j], i})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && (isIdentStart(s[j]) || s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '-') {
				j++
			}
			toks = append(toks, token{tokIdent, s[i:j], i})
			i = j
		default:
			return nil, &SyntaxError{Pos: i, Msg: fmt.Sprintf("unexpected character %q", c)}
		}
	}
	return append(toks, token{tokEOF, "end of expression", len(s)}), nil
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

type parser struct {
	toks []token
	i    int
	src  string
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) keyword(w string) bool {
	if t := p.peek(); t.kind == tokIdent && strings.EqualFold(t.text, w) {
		p.i++
		return true
	}
	return false
}

func (p *parser) or() (node, error) {
	l, err := p.and()
	for err == nil && p.keyword("or") {
		var r node
		if r, err = p.and(); err == nil {
			l = &logic{and: false, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) and() (node, error) {
	l, err := p.unary()
	for err == nil && p.keyword("and") {
		var r node
		if r, err = p.unary(); err == nil {
			l = &logic{and: true, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) unary() (node, error) {
	if p.keyword("not") {
		x, err := p.unary()
		return &not{x}, err
	}
	if t := p.peek(); t.kind == tokLParen {
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tokRParen {
			return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("expected \")\", found %q", t.text)}
		}
		return n, nil
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	t := p.next()
	if t.kind != tokOp {
		return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("expected a comparison operator, found %q", t.text)}
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return &compare{op: t.text, l: l, r: r}, nil
}

func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tokNum:
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return operand{}, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("bad number %q", t.text)}
		}
		return operand{num: v}, nil
	case tokIdent:
		if w := strings.ToLower(t.text); w == "and" || w == "or" || w == "not" {
			break
		}
		dot := strings.IndexByte(t.text, '.')
		if dot <= 0 || dot == len(t.text)-1 {
			return operand{}, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("%q: want series.aggregate, e.g. temperature.mean", t.text)}
		}
		feat := t.text[dot+1:]
		if !emberwatch.IsFeatureName(feat) {
			return operand{}, &SyntaxError{Pos: t.pos + dot + 1, Msg: fmt.Sprintf("unknown aggregate %q (known: %s, or a quantile such as p90)", feat, strings.Join(emberwatch.FeatureNames, ", "))}
		}
		return operand{series: t.text[:dot], feature: feat}, nil
	}
	return operand{}, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("expected a number or series.aggregate, found %q", t.text)}
}
