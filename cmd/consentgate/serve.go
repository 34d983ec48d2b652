package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/proxy"
	"github.com/consentgate/consentgate/secrets"
)

func newServeCmd(logger func() *slog.Logger) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway from a configuration file",
		Long: `Run the gateway, forward and admin listeners from a configuration file.
The configuration, every vendor profile, the vendor client certificates and the
inbound TLS are loaded and checked before anything listens. SIGHUP reloads the
serving certificate and the file secret store; SIGINT/SIGTERM drain and stop.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(file)
			if err != nil {
				return err
			}
			if err := cfg.CheckFiles(); err != nil {
				return err
			}
			p, err := openSecrets(cfg)
			if err != nil {
				return err
			}
			gw, err := startGateway(cmd.Context(), cfg, p, logger())
			if err != nil {
				return err
			}
			gw.printReady(cmd.OutOrStdout())
			return gw.serve(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&file, "config", "configs/consentgate.yaml", "configuration file")
	return cmd
}

func openSecrets(cfg *configs.Config) (secrets.Provider, error) {
	switch cfg.Secrets.Provider {
	case "file":
		return secrets.OpenFile(cfg.ResolvePath(cfg.Secrets.File.Path))
	case "vault":
		return nil, errors.New("secrets provider vault is not available in this version yet: use provider file")
	default:
		return nil, fmt.Errorf("unknown secrets provider %q", cfg.Secrets.Provider)
	}
}

// running is a gateway bound to its ports.
type running struct {
	cfg     *configs.Config
	secrets secrets.Provider
	in      *proxy.InboundTLS
	srv     *proxy.Server
	log     *slog.Logger
}

func startGateway(ctx context.Context, cfg *configs.Config, p secrets.Provider, log *slog.Logger) (*running, error) {
	gw, err := proxy.New(ctx, proxy.Options{Config: cfg, Secrets: p, Logger: log})
	if err != nil {
		return nil, err
	}
	in, err := proxy.NewInboundTLS(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := proxy.Listen(cfg, in, gw, log)
	if err != nil {
		return nil, err
	}
	return &running{cfg: cfg, secrets: p, in: in, srv: srv, log: log}, nil
}

func (r *running) gatewayURL() string { return "https://" + r.srv.Addr(0) }

func (r *running) printReady(w io.Writer) {
	fmt.Fprintf(w, "ready gateway=https://%s forward=https://%s admin=https://%s\n", r.srv.Addr(0), r.srv.Addr(1), r.srv.Addr(2))
}

// serve runs until ctx ends; SIGHUP reloads what can be reloaded without a restart.
func (r *running) serve(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload()
			}
		}
	}()
	r.log.Info("consentgate started", "node", r.cfg.Node, "gateway", r.srv.Addr(0), "forward", r.srv.Addr(1), "admin", r.srv.Addr(2), "vendors", len(r.cfg.Vendors))
	err := r.srv.Serve(ctx)
	r.log.Info("consentgate stopped", "node", r.cfg.Node)
	return err
}

func (r *running) reload() {
	if err := r.in.Reload(); err != nil {
		r.log.Error("reloading serving certificate failed; keeping the current one", "error", err)
	}
	if f, ok := r.secrets.(*secrets.FileStore); ok {
		if err := f.Reload(); err != nil {
			r.log.Error("reloading secrets file failed; keeping the current values", "error", err)
		}
	}
	r.log.Info("reload done")
}
