package storetest

import (
	"sync"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// testSessionEpoch: a user's session epoch starts where CreateUser put it, only
// EndSessions moves it (one step per call, also when calls race), and UpdateUser and
// RecordLogin leave it alone.
func testSessionEpoch(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "epochs")
	ann := newUser(team.ID, "ann@example.com", 1)
	must(t, "creating user", s.CreateUser(ctx, ann))
	bob := newUser(team.ID, "bob@example.com", 2)
	bob.SessionEpoch = 41
	must(t, "creating user with an epoch", s.CreateUser(ctx, bob))

	epoch := func(id string) int64 {
		t.Helper()
		u, err := s.GetUser(ctx, id)
		must(t, "getting user", err)
		return u.SessionEpoch
	}
	if got := epoch(ann.ID); got != 0 {
		t.Errorf("new user's epoch = %d, want 0", got)
	}
	if got := epoch(bob.ID); got != 41 {
		t.Errorf("epoch given at creation = %d, want 41", got)
	}
	n, err := s.EndSessions(ctx, ann.ID)
	must(t, "ending sessions", err)
	if n != 1 || epoch(ann.ID) != 1 {
		t.Errorf("EndSessions = %d, stored %d; want 1", n, epoch(ann.ID))
	}
	if got, _ := s.GetUserByEmail(ctx, "ann@example.com"); got == nil || got.SessionEpoch != 1 {
		t.Errorf("GetUserByEmail's epoch = %+v, want 1", got)
	}
	if got, _ := s.ListUsers(ctx, team.ID); len(got) != 2 || got[0].SessionEpoch != 1 || got[1].SessionEpoch != 41 {
		t.Errorf("ListUsers' epochs wrong: %+v", got)
	}
	if epoch(bob.ID) != 41 {
		t.Errorf("ending ann's sessions moved bob's epoch to %d", epoch(bob.ID))
	}

	// UpdateUser writes everything else but never the epoch (a stale copy must not
	// bring old sessions back).
	stale := *ann
	stale.SessionEpoch = 0
	stale.Name = "Ann"
	must(t, "updating user", s.UpdateUser(ctx, &stale))
	if got := epoch(ann.ID); got != 1 {
		t.Errorf("UpdateUser with a stale epoch set it to %d, want 1", got)
	}

	// Racing EndSessions calls each take one step.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.EndSessions(ctx, ann.ID); err != nil {
				t.Errorf("concurrent EndSessions: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := epoch(ann.ID); got != 9 {
		t.Errorf("after 8 concurrent EndSessions the epoch is %d, want 9", got)
	}
	_, err = s.EndSessions(ctx, "no-such-user")
	wantKind(t, "EndSessions of a missing user", err, domain.KindNotFound)
}

// testRecordLogin: RecordLogin writes the last login time and nothing else.
func testRecordLogin(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "logins")
	u := newUser(team.ID, "ann@example.com", 1)
	must(t, "creating user", s.CreateUser(ctx, u))
	// Another writer changed the password meanwhile: a login that read the old row
	// must not write the old hash back.
	changed := *u
	changed.PasswordHash = "$argon2id$changed"
	must(t, "changing password", s.UpdateUser(ctx, &changed))
	must(t, "recording login", s.RecordLogin(ctx, u.ID, at(9, 5)))
	want := changed
	want.LastLoginAt = at(9, 5)
	got, err := s.GetUser(ctx, u.ID)
	must(t, "getting user", err)
	same(t, "user after RecordLogin", got, &want, normUser)
	wantKind(t, "RecordLogin of a missing user", s.RecordLogin(ctx, "no-such-user", at(1, 0)), domain.KindNotFound)
}

// testAPIKeyCreator: a key is read with its creating user's current role and disabled
// time, by hash and in listings; without a creator, or once the creator is gone (or is
// another team's user), Creator is nil.
func testAPIKeyCreator(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team, other := addTeam(t, s, "creators"), addTeam(t, s, "other")
	owner := newUser(team.ID, "owner@example.com", 1)
	owner.Role = domain.RoleOwner
	stranger := newUser(other.ID, "stranger@example.com", 2)
	for _, u := range []*domain.User{owner, stranger} {
		must(t, "creating user", s.CreateUser(ctx, u))
	}
	newKey := func(name, userID string, created int) *domain.APIKey {
		k := &domain.APIKey{ID: domain.NewID(20), TeamID: team.ID, Name: name, Prefix: "sk_" + name,
			Hash: domain.NewID(40), Scopes: []domain.Scope{domain.ScopeAdmin}, UserID: userID, CreatedAt: at(created, 0),
			// Stores ignore Creator on create: the user's row is the truth.
			Creator: &domain.KeyCreator{Role: domain.RoleViewer}}
		must(t, "creating key "+name, s.CreateAPIKey(ctx, k))
		return k
	}
	byOwner := newKey("owner", owner.ID, 1)
	system := newKey("system", "", 2)
	foreign := newKey("foreign", stranger.ID, 3)
	gone := newKey("gone", "no-such-user", 4)

	check := func(step string, want map[*domain.APIKey]*domain.KeyCreator) {
		t.Helper()
		listed, err := s.ListAPIKeys(ctx, team.ID)
		must(t, "listing keys", err)
		byID := map[string]*domain.APIKey{}
		for _, k := range listed {
			byID[k.ID] = k
		}
		for k, c := range want {
			w := *k
			w.Creator = c
			got, err := s.GetAPIKeyByHash(ctx, k.Hash)
			must(t, "getting key", err)
			same(t, step+": key "+k.Name, got, &w, normKey)
			same(t, step+": listed key "+k.Name, byID[k.ID], &w, normKey)
		}
	}
	check("as created", map[*domain.APIKey]*domain.KeyCreator{
		byOwner: {Role: domain.RoleOwner}, system: nil, foreign: nil, gone: nil})

	// Demoted and disabled: the key reads the user as the user is now.
	demoted := *owner
	demoted.Role, demoted.DisabledAt = domain.RoleMember, at(30, 7)
	must(t, "demoting the owner", s.UpdateUser(ctx, &demoted))
	check("after demotion", map[*domain.APIKey]*domain.KeyCreator{
		byOwner: {Role: domain.RoleMember, DisabledAt: at(30, 7)}})

	must(t, "deleting the owner", s.DeleteUser(ctx, team.ID, owner.ID))
	check("after deletion", map[*domain.APIKey]*domain.KeyCreator{byOwner: nil, system: nil})
}
