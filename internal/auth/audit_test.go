package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestNewAuditEntry(t *testing.T) {
	ctx := domain.WithRequestMeta(t.Context(), domain.RequestMeta{RemoteAddr: "198.51.100.1", RequestID: "r-9"})
	details := map[string]string{"name": "ci"}
	tests := []struct {
		name      string
		p         domain.Principal
		actorType string
		actorID   string
	}{
		{"key", domain.Principal{TeamID: "t", KeyID: "k1", UserID: "u1"}, "key", "k1"},
		{"session", domain.Principal{TeamID: "t", UserID: "u1"}, "user", "u1"},
		{"system", domain.Principal{TeamID: "t"}, "system", ""},
	}
	for _, tc := range tests {
		e := NewAuditEntry(ctx, tc.p, "key.create", "k2", 201, details)
		if e.TeamID != "t" || e.ActorType != tc.actorType || e.ActorID != tc.actorID || e.Action != "key.create" ||
			e.Target != "k2" || e.Status != 201 || e.RemoteAddr != "198.51.100.1" || e.RequestID != "r-9" || e.Details["name"] != "ci" {
			t.Errorf("%s: NewAuditEntry = %+v; want actor %s %q with the request meta", tc.name, e, tc.actorType, tc.actorID)
		}
	}
	if e := NewAuditEntry(t.Context(), domain.Principal{TeamID: "t"}, "x", "", 0, nil); e.RemoteAddr != "" || e.RequestID != "" {
		t.Errorf("entry without request meta = %+v", e)
	}
}

func TestRecord(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	given := time.Date(2029, 5, 5, 5, 5, 5, 0, time.UTC)
	f.ks.Audit.Record(ctx, &domain.AuditEntry{TeamID: "team-a", ActorType: "key", ActorID: "k", Action: "sandbox.create", Target: "sb1", Status: 201})
	f.ks.Audit.Record(ctx, &domain.AuditEntry{TeamID: "team-a", ActorType: "system", Action: "sandbox.timeout", At: given})
	f.ks.Audit.Record(ctx, &domain.AuditEntry{ActorType: "system", Action: "teamless"}) // skipped

	// A cancelled request still gets its entry: the action happened.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f.ks.Audit.Record(cancelled, &domain.AuditEntry{TeamID: "team-a", ActorType: "key", ActorID: "k", Action: "sandbox.kill"})

	got, err := f.store.ListAudit(ctx, domain.AuditFilter{TeamID: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		action string
		at     time.Time
	}{{"sandbox.kill", f.clock.now()}, {"sandbox.timeout", given}, {"sandbox.create", f.clock.now()}}
	if len(got) != len(want) {
		t.Fatalf("audit log = %d entries %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].Action != w.action || !got[i].At.Equal(w.at) {
			t.Errorf("entry %d = %s at %v, want %s at %v", i, got[i].Action, got[i].At, w.action, w.at)
		}
	}
	if orphans, err := f.store.ListAudit(ctx, domain.AuditFilter{}); err != nil || len(orphans) != 0 {
		t.Errorf("entries without a team were written: %+v, %v", orphans, err)
	}

	// A failing store is logged, not returned or panicked on.
	f.store.appendAudit = func(context.Context, *domain.AuditEntry) error { return errors.New("audit disk full") }
	f.ks.Audit.Record(ctx, &domain.AuditEntry{TeamID: "team-a", Action: "key.revoke"})
	if logs := f.logs.String(); !strings.Contains(logs, "audit disk full") || !strings.Contains(logs, "key.revoke") {
		t.Errorf("failed audit write not logged; logs: %s", logs)
	}
}

func TestAudit(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, e := range []struct{ team, action string }{
		{"team-a", "key.create"}, {"team-a", "sandbox.create"}, {"team-a", "key.create"},
		{"team-b", "key.create"}, {"ops", "team.create"},
	} {
		f.clock.add(time.Second)
		f.ks.Audit.Record(ctx, &domain.AuditEntry{TeamID: e.team, ActorType: "system", Action: e.action})
	}
	auditor := domain.Principal{TeamID: "team-a", KeyID: "k", Scopes: []domain.Scope{domain.ScopeAuditRead}}
	type row struct{ team, action string }
	tests := []struct {
		name string
		p    domain.Principal
		f    domain.AuditFilter
		want []row // newest first
		kind domain.Kind
	}{
		{"team admin", f.a, domain.AuditFilter{}, []row{{"team-a", "key.create"}, {"team-a", "sandbox.create"}, {"team-a", "key.create"}}, 0},
		{"audit:read key", auditor, domain.AuditFilter{Action: "sandbox.create"}, []row{{"team-a", "sandbox.create"}}, 0},
		{"limit", f.a, domain.AuditFilter{Limit: 1}, []row{{"team-a", "key.create"}}, 0},
		{"non-admin naming another team gets its own", f.a, domain.AuditFilter{TeamID: "team-b"}, []row{{"team-a", "key.create"}, {"team-a", "sandbox.create"}, {"team-a", "key.create"}}, 0},
		{"platform admin names a team", f.admin, domain.AuditFilter{TeamID: "team-b"}, []row{{"team-b", "key.create"}}, 0},
		{"platform admin, own team", f.admin, domain.AuditFilter{}, []row{{"ops", "team.create"}}, 0},
		{"member lacks audit:read", domain.Principal{TeamID: "team-a", UserID: "m", Scopes: memberScopes}, domain.AuditFilter{}, nil, domain.KindForbidden},
		{"nobody", domain.Principal{}, domain.AuditFilter{}, nil, domain.KindUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.ks.Audit.Audit(ctx, tc.p, tc.f)
			if tc.kind != 0 {
				wantKind(t, "Audit", err, tc.kind, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var rows []row
			for _, e := range got {
				rows = append(rows, row{e.TeamID, e.Action})
			}
			if len(rows) != len(tc.want) {
				t.Fatalf("Audit = %v, want %v", rows, tc.want)
			}
			for i := range rows {
				if rows[i] != tc.want[i] {
					t.Errorf("Audit = %v, want %v", rows, tc.want)
					break
				}
			}
		})
	}
}
