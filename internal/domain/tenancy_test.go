package domain

import (
	"reflect"
	"testing"
)

func TestRoleScopes(t *testing.T) {
	tests := []struct {
		role  Role
		can   []Scope
		canot []Scope
	}{
		{RoleOwner, AllScopes, nil},
		{RoleAdmin, AllScopes, nil},
		{RoleMember, []Scope{ScopeSandboxesWrite, ScopeKeysWrite, ScopeUsageRead}, []Scope{ScopeTeamWrite, ScopeAuditRead, ScopeAdmin}},
		{RoleViewer, []Scope{ScopeSandboxesRead, ScopeUsageRead, ScopeTeamRead}, []Scope{ScopeSandboxesWrite, ScopeKeysRead, ScopeKeysWrite}},
		{Role("root"), nil, []Scope{ScopeSandboxesRead}},
	}
	for _, tt := range tests {
		scopes := RoleScopes(tt.role)
		for _, s := range tt.can {
			if !HasScope(scopes, s) {
				t.Errorf("%s lacks %s", tt.role, s)
			}
		}
		for _, s := range tt.canot {
			if HasScope(scopes, s) {
				t.Errorf("%s has %s", tt.role, s)
			}
		}
	}
	if !Covers(RoleScopes(RoleAdmin), RoleScopes(RoleMember)) || Covers(RoleScopes(RoleMember), RoleScopes(RoleAdmin)) {
		t.Error("Covers: admin must cover member and not the other way round")
	}
}

func TestActingFor(t *testing.T) {
	user := Principal{TeamID: "a", KeyID: "k", Scopes: []Scope{ScopeUsageRead}}
	admin := Principal{TeamID: "ops", KeyID: "root", Admin: true, Scopes: []Scope{ScopeAdmin}}
	tests := []struct {
		name   string
		p      Principal
		team   string
		want   Principal
		wantNF bool
	}{
		{"own team by default", user, "", user, false},
		{"own team named", user, "a", user, false},
		{"another team is not found", user, "b", Principal{}, true},
		{"a platform admin acts for another team", admin, "b", Principal{TeamID: "b", KeyID: "root", Admin: true, Scopes: []Scope{ScopeAdmin}}, false},
	}
	for _, tt := range tests {
		got, err := tt.p.ActingFor(tt.team)
		if tt.wantNF != IsKind(err, KindNotFound) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ActingFor(%q) = %+v, %v", tt.name, tt.team, got, err)
		}
	}
}

func TestQuotaApply(t *testing.T) {
	base := Quota{MaxSandboxes: 10, MaxCPUCores: 4, MaxMemoryMB: 8192, MaxDiskMB: 1000, RequestsPerMinute: 600}
	rpm := int64(60)
	if got := base.Apply(&QuotaPatch{RequestsPerMinute: &rpm}); got != (Quota{10, 4, 8192, 1000, 60, 0, 0, 0}) {
		t.Errorf("one field = %+v", got)
	}
	if got := base.Apply(nil); got != base {
		t.Errorf("nil patch = %+v", got)
	}
	other := Quota{1, 2, 3, 4, 5, 6, 7, 8}
	if got := base.Apply(FullPatch(other)); got != other {
		t.Errorf("full patch = %+v", got)
	}
}

func TestIntersect(t *testing.T) {
	admin := []Scope{ScopeAdmin}
	tests := []struct {
		name string
		a, b []Scope
		want []Scope
	}{
		{"admin key, admin role", admin, RoleScopes(RoleOwner), admin},
		{"admin key, member role", admin, RoleScopes(RoleMember), RoleScopes(RoleMember)},
		{"admin key, viewer role", admin, RoleScopes(RoleViewer), RoleScopes(RoleViewer)},
		{"narrow key, admin role", []Scope{ScopeUsageRead, ScopeTeamWrite}, admin, []Scope{ScopeUsageRead, ScopeTeamWrite}},
		{"narrow key, viewer role", []Scope{ScopeSandboxesWrite, ScopeSandboxesRead, ScopeTeamWrite}, RoleScopes(RoleViewer), []Scope{ScopeSandboxesRead}},
		{"unknown role", admin, RoleScopes("root"), []Scope{}},
		{"nothing", nil, admin, []Scope{}},
	}
	for _, tt := range tests {
		if got := Intersect(tt.a, tt.b); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Intersect(%v, %v) = %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}
