package main

import (
	"context"
	"fmt"
	"reflect"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/sensors"
)

// sourceSet owns the running sources. Each runs in its own goroutine with
// its own cancel, so that a config change can stop one source and start
// another while the rest keep reading. It belongs to the agent's control
// loop; only the goroutines it starts touch it concurrently, through
// channels.
type sourceSet struct {
	ctx     context.Context
	out     chan<- emberwatch.Reading
	log     zerolog.Logger
	running map[string]*runningSource
	// failed receives the error of a source that stopped with one.
	failed chan error
	// finished is signalled when any source returns; see reap.
	finished chan struct{}
}

type runningSource struct {
	cfg    sensors.Config
	src    sensors.Source
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// openedSource is a source built and opened but not yet running.
type openedSource struct {
	cfg sensors.Config
	src sensors.Source
}

func newSourceSet(ctx context.Context, out chan<- emberwatch.Reading, log zerolog.Logger) *sourceSet {
	return &sourceSet{ctx: ctx, out: out, log: log, running: map[string]*runningSource{},
		failed: make(chan error, 1), finished: make(chan struct{}, 1)}
}

// open builds and opens the sources cfgs[i] for i in which, so that one
// that cannot start is found before anything is switched. On error it
// closes what it opened.
func (s *sourceSet) open(cfgs []sensors.Config, which []int) ([]openedSource, error) {
	var opened []openedSource
	for _, i := range which {
		c := cfgs[i]
		src, err := sensors.New(c, s.log)
		if err == nil {
			if o, ok := src.(sensors.Opener); ok {
				err = o.Open()
			}
		}
		if err != nil {
			closeAll(opened)
			return nil, fmt.Errorf("sources[%d] (%s): cannot start: %w", i, c.Name, err)
		}
		opened = append(opened, openedSource{c, src})
	}
	return opened, nil
}

func closeAll(opened []openedSource) {
	for _, o := range opened {
		if c, ok := o.src.(sensors.Opener); ok {
			c.Close()
		}
	}
}

// plan splits a new source list against the running one: the indexes of
// the configs to open and start (new or changed), and the names to stop
// (removed or changed). Unchanged sources keep running untouched.
func (s *sourceSet) plan(cfgs []sensors.Config) (start []int, stop []string) {
	want := map[string]bool{}
	for i, c := range cfgs {
		want[c.Name] = true
		if r, ok := s.running[c.Name]; ok && reflect.DeepEqual(r.cfg, c) {
			continue
		}
		if _, ok := s.running[c.Name]; ok {
			stop = append(stop, c.Name)
		}
		start = append(start, i)
	}
	for name := range s.running {
		if !want[name] {
			stop = append(stop, name)
		}
	}
	return start, stop
}

// start runs opened sources.
func (s *sourceSet) start(opened []openedSource) {
	for _, o := range opened {
		ctx, cancel := context.WithCancel(s.ctx)
		r := &runningSource{cfg: o.cfg, src: o.src, cancel: cancel, done: make(chan struct{})}
		s.running[o.cfg.Name] = r
		go func() {
			r.err = r.src.Run(ctx, s.out)
			close(r.done)
			if r.err != nil {
				select {
				case s.failed <- fmt.Errorf("source %s: %w", r.cfg.Name, r.err):
				default: // one failure is enough to stop the agent
				}
			}
			select {
			case s.finished <- struct{}{}:
			default: // a signal is already pending; reap sees them all
			}
		}()
	}
}

// stop cancels the named sources and waits until they have returned.
func (s *sourceSet) stop(names []string) {
	for _, n := range names {
		if r, ok := s.running[n]; ok {
			r.cancel()
		}
	}
	for _, n := range names {
		if r, ok := s.running[n]; ok {
			<-r.done
			delete(s.running, n)
		}
	}
}

// stopAll stops every source.
func (s *sourceSet) stopAll() {
	names := make([]string, 0, len(s.running))
	for n := range s.running {
		names = append(names, n)
	}
	s.stop(names)
}

// reap forgets the sources that have returned and reports how many still
// run.
func (s *sourceSet) reap() int {
	for n, r := range s.running {
		select {
		case <-r.done:
			r.cancel() // release its context
			delete(s.running, n)
		default:
		}
	}
	return len(s.running)
}
