package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/server"
)

func init() {
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--models FOLDER,...]",
		Short: "Serve the captioning API, the upload page (/) and the live page (/live)",
		Long: `Listens on --addr (server.addr), loads and warms up the model in --model and
those in --models (server.models), then captions images sent to POST /v1/captions
in dynamic batches. The models share one encoder; a request picks one by its
folder's name (field model), the one in --model when it names none. /healthz
answers at once, /readyz once the models are warm. The API is described at
/openapi.json.

Signals: SIGTERM or SIGINT stop accepting connections and finish every accepted
request within server.shutdown_grace; SIGHUP reloads the models (as POST
/admin/reload does) and keeps the old ones if the new ones fail to load.
Logs are JSON lines on stderr with a request_id per request.`,
		Args: cobra.NoArgs,
		RunE: runServe,
	}
	cmd.Flags().String("addr", "127.0.0.1:8080", "listen address HOST:PORT (server.addr; :8080 for every interface)")
	cmd.Flags().StringSlice("models", nil, "caption model folders to serve beside --model, comma-separated (server.models)")
	bindOnRun(cmd, map[string]string{"addr": "server.addr", "models": "server.models"})
	rootCmd.AddCommand(cmd)
}

func runServe(cmd *cobra.Command, _ []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log_level: %w", err)
	}
	if cfg.Decode.Beam > cfg.Server.MaxBeam {
		// The other commands take decode.beam up to config.MaxBeam, so the
		// two keys are checked together here only.
		return fmt.Errorf("decode.beam %d is above server.max_beam %d: a request naming no beam would be decoded at %d, and one naming %d refused; lower decode.beam or raise server.max_beam",
			cfg.Decode.Beam, cfg.Server.MaxBeam, cfg.Server.MaxBeam, cfg.Decode.Beam)
	}
	log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log) // the device and model packages log through the default logger
	for _, w := range misspeltEnv(os.Environ()) {
		log.Warn(w)
	}
	if err := serve(cfg, log); err != nil {
		// In the JSON log, as everything before it, for a log collector to see.
		log.Error("serve stopped", "err", err.Error())
		return loggedError{err}
	}
	return nil
}

// loggedError is an error serve has logged already: main exits 1 without
// printing it again, in another format.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

// serve listens on server.addr and serves cfg's models until a signal stops it.
func serve(cfg *config.Config, log *slog.Logger) error {
	server.TuneProcess()

	// Signals are caught before anything else so that a SIGTERM during the model
	// load is a clean shutdown, not a killed process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s (server.addr): %w", cfg.Server.Addr, err)
	}
	s := server.New(cfg, server.PipelineLoader(cfg), log)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	started := make(chan error, 1)
	go func() { started <- s.Start(context.Background()) }()

	for {
		select {
		case err := <-started:
			if err != nil {
				shutdown(s, cfg, log)
				return fmt.Errorf("loading %s: %w", modelsLoaded(cfg), err)
			}
		case err := <-served:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				go func() {
					// Reload logs its own outcome; the old model keeps serving on failure.
					if _, err := s.Reload(context.Background()); errors.Is(err, server.ErrReloadRunning) {
						log.Warn("SIGHUP ignored", "err", err)
					}
				}()
				continue
			}
			log.Info("shutting down", "signal", sig.String(), "grace", cfg.Server.ShutdownGrace.String())
			err := shutdown(s, cfg, log)
			if serr := <-served; serr != nil {
				return serr
			}
			return err
		}
	}
}

func shutdown(s *server.Server, cfg *config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: grace period of %s (server.shutdown_grace) over with requests unfinished: %w", cfg.Server.ShutdownGrace, err)
	}
	log.Info("shutdown complete")
	return nil
}

// modelsLoaded names the model folders serve loads: model, then server.models.
func modelsLoaded(cfg *config.Config) string {
	if len(cfg.Server.Models) == 0 {
		return "the model " + cfg.Model
	}
	return "the models " + strings.Join(append([]string{cfg.Model}, cfg.Server.Models...), ", ")
}
