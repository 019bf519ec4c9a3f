package agent

import (
	"fmt"

	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/logkey"
)

// startTemplateCommand starts the template's start command (Config.StartCmd) as root
// with tag "start", the way envd runs a template's start command, and logs its output.
func (a *Agent) startTemplateCommand(cmdline string) error {
	root, err := a.userNamed("root")
	if err != nil {
		return err
	}
	tag := "start"
	cwd := "/"
	no := false
	req := &process.StartRequest{
		Process: &process.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", cmdline}, Cwd: &cwd},
		Tag:     &tag,
		Stdin:   &no,
	}
	spec, err := (&processService{a: a}).spec(root, req, 0)
	if err != nil {
		return fmt.Errorf("start command %q: %w", cmdline, err)
	}
	sub := newSubscriber()
	p, err := a.procs.start(spec, sub)
	if err != nil {
		return fmt.Errorf("start command %q: %w", cmdline, err)
	}
	log := a.log.With(logkey.Subsystem, "start_cmd", logkey.PID, p.pid)
	log.Info("start command started", "cmd", cmdline)
	go func() {
		defer p.unsubscribe(sub)
		for ev := range sub.ch {
			if d := ev.GetData(); d != nil {
				if b := d.GetStdout(); len(b) > 0 {
					log.Info("start command output", "stdout", string(b))
				}
				if b := d.GetStderr(); len(b) > 0 {
					log.Info("start command output", "stderr", string(b))
				}
			}
			if e := ev.GetEnd(); e != nil {
				log.Warn("start command ended", "status", e.GetStatus())
				return
			}
		}
	}()
	return nil
}
