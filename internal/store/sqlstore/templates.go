package sqlstore

import (
	"context"
	"fmt"

	"github.com/warren-sh/warren/internal/domain"
)

// Templates is the domain.TemplateStore.
type Templates struct{ db *db }

var _ domain.TemplateStore = (*Templates)(nil)

const templateColumns = `id, description, hash, rootfs, ready, built_at, size_bytes, start_cmd, ready_port, private_ports`

// UpsertTemplate inserts t or replaces every field of the template with t's id.
func (s *Templates) UpsertTemplate(ctx context.Context, t *domain.Template) error {
	e := encoder{d: s.db.d}
	args := []any{t.ID, t.Description, t.Hash, t.RootFS, t.Ready, e.time("built_at", t.BuiltAt), t.SizeBytes,
		t.StartCmd, t.ReadyPort, encodePorts(t.PrivatePorts)}
	if e.err != nil {
		return s.db.wrap(e.err, "saving template %s", t.ID)
	}
	_, err := s.db.exec(ctx, `INSERT INTO templates (`+templateColumns+`) VALUES (`+marks(10)+`)
		ON CONFLICT (id) DO UPDATE SET
			description = excluded.description, hash = excluded.hash, rootfs = excluded.rootfs,
			ready = excluded.ready, built_at = excluded.built_at, size_bytes = excluded.size_bytes,
			start_cmd = excluded.start_cmd, ready_port = excluded.ready_port,
			private_ports = excluded.private_ports`, args...)
	if err != nil {
		return s.db.wrap(err, "saving template %s", t.ID)
	}
	return nil
}

func scanTemplate(d Dialect, r rowScanner) (*domain.Template, error) {
	var t domain.Template
	var ports string
	if err := r.Scan(&t.ID, &t.Description, &t.Hash, &t.RootFS, &t.Ready, scanTime(d, &t.BuiltAt), &t.SizeBytes,
		&t.StartCmd, &t.ReadyPort, &ports); err != nil {
		return nil, err
	}
	var err error
	if t.PrivatePorts, err = decodePorts(ports); err != nil {
		return nil, fmt.Errorf("template %s: %w", t.ID, err)
	}
	return &t, nil
}

// GetTemplate returns the template with that id.
func (s *Templates) GetTemplate(ctx context.Context, id string) (*domain.Template, error) {
	return get(ctx, s.db, scanTemplate, "template", id, `SELECT `+templateColumns+` FROM templates WHERE id = ?`, id)
}

// ListTemplates returns every template ordered by id.
func (s *Templates) ListTemplates(ctx context.Context) ([]*domain.Template, error) {
	return list(ctx, s.db, scanTemplate, "listing templates", `SELECT `+templateColumns+` FROM templates ORDER BY id`)
}
