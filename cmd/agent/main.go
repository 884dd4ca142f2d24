// Command agent is the Emberwatch edge agent: it reads sensors, computes
// windowed features, detects anomalies and delivers alerts over MQTT.
//
//	agent run [--config FILE] [--speed F]   run the agent (default: the embedded demo)
//	agent validate --config FILE            check a config and exit
//	agent replay --input REC.csv --out DIR  window a recording into DIR/features.jsonl
//	agent eval nab --data DIR --out DIR     score point detectors on the Numenta Anomaly Benchmark
//	agent config keygen|sign|push ...       make keys, sign and push configs to devices
//	agent version                           print version, commit, Go version and platform
//
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch/configs"
)

// Set by the linker: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = ""
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: agent <command> [flags]

commands:
  run       [--config FILE] [--speed F]  run the agent (default config: the embedded demo)
  validate  --config FILE                check a config; exit 2 and name the field if invalid
  replay    [--config FILE] --input RECORDING.csv --out DIR [--strict]
                                         run a recording through windowing as fast as it reads;
                                         write DIR/features.jsonl
  eval nab  --data DIR --out DIR [--detector NAME] [--hints]
                                         score point detectors on the Numenta Anomaly Benchmark;
                                         write NAB results files to DIR and print the scores
  config keygen --out PREFIX              write an ed25519 key pair: PREFIX.key (private), PREFIX.pub
  config sign   --key KEY [--revision N] FILE
                                         wrap FILE in a signed envelope, printed on stdout
  config push   --broker URL --device ID [--key KEY] [--revision N] FILE
                                         push FILE (a config, or an envelope from sign) to a device
                                         and wait for its acknowledgement
  version                                print version, commit, Go version and platform

SIGHUP makes a running agent re-read its --config file.
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(ctx, args[1:], stdout, stderr)
	case "eval":
		return cmdEval(ctx, args[1:], stdout, stderr)
	case "config":
		return cmdConfig(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "agent: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func versionString() string {
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("emberwatch %s (commit %s) %s %s/%s", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// loadConfig reads path (or the embedded demo when path is empty) and
// applies the speed override. It returns the config and its source bytes.
func loadConfig(path string, speed float64, speedSet bool) (*configs.Config, []byte, error) {
	var raw []byte
	if path == "" {
		raw = configs.Demo()
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		raw = b
	}
	cfg, err := configs.Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	if speedSet {
		for i := range cfg.Sources {
			if cfg.Sources[i].Type == "simulator" {
				cfg.Sources[i].Simulator.Speed = speed
			}
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, err
		}
	}
	return cfg, raw, nil
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to check (required)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: agent validate --config FILE")
		return exitUsage
	}
	cfg, _, err := loadConfig(*path, 0, false)
	if err != nil {
		printConfigError(stderr, *path, err)
		return exitUsage
	}
	// Files the config names are read at start, not by validation (the
	// device may differ from where this runs); say so if one is missing.
	if f := cfg.Remote.PublicKeyFile; f != "" {
		if _, err := configs.LoadPublicKey(f); err != nil {
			fmt.Fprintf(stderr, "%s: warning: remote_config.public_key_file: %v (the agent will not start without it)\n", *path, err)
		}
	}
	fmt.Fprintf(stdout, "%s: ok (device %s, %d sources, %d windows, %d detectors, %d rules)\n",
		*path, cfg.Device, len(cfg.Sources), len(cfg.Windows), len(cfg.Detectors), len(cfg.Rules))
	return exitOK
}

func printConfigError(w io.Writer, path string, err error) {
	if path == "" {
		path = "embedded demo config"
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		fmt.Fprintf(w, "%s: invalid config:\n", path)
		for _, e := range joined.Unwrap() {
			fmt.Fprintf(w, "  %v\n", e)
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default: the embedded demo config)")
	speed := fs.Float64("speed", 0, "override the simulator speed: simulated seconds per wall second, 0 = as fast as possible")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	speedSet := false
	fs.Visit(func(f *flag.Flag) { speedSet = speedSet || f.Name == "speed" })
	cfg, raw, err := loadConfig(*path, *speed, speedSet)
	if err != nil {
		printConfigError(stderr, *path, err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)
	if *path == "" {
		log.Info().Msg("no --config given: running the embedded demo config")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	relayDone := make(chan struct{})
	defer func() { <-relayDone }()
	relayCtx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	go func() {
		defer close(relayDone)
		for {
			select {
			case <-relayCtx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	a := &agent{path: *path, cfg: cfg, raw: raw, log: log, reload: reload}
	if speedSet {
		a.speed = speed
	}
	if err := a.run(ctx); err != nil {
		log.Error().Err(err).Msg("agent failed")
		return exitFailure
	}
	return exitOK
}

func newLogger(c configs.LogConfig, w io.Writer) zerolog.Logger {
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05"}
	}
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
