package domain

import (
	"reflect"
	"testing"
)

func TestStepDefaults(t *testing.T) {
	step := func(k StepKind, args ...string) BuildStep { return BuildStep{Kind: k, Args: args} }
	tests := []struct {
		name          string
		steps         []BuildStep
		env           map[string]string
		workdir, user string
	}{
		{"none", []BuildStep{step(StepRun, "true"), step(StepCopy, "a", "/b")}, nil, "", ""},
		{"later wins", []BuildStep{step(StepEnv, "A", "1", "B", "2"), step(StepUser, "root"), step(StepEnv, "A", "3"),
			step(StepWorkdir, "/x"), step(StepUser, "user"), step(StepWorkdir, "/y/")}, map[string]string{"A": "3", "B": "2"}, "/y", "user"},
		{"relative workdir", []BuildStep{step(StepWorkdir, "/app"), step(StepWorkdir, "src/../lib")}, nil, "/app/lib", ""},
		{"relative first", []BuildStep{step(StepWorkdir, "app")}, nil, "app", ""},
	}
	for _, tt := range tests {
		env, workdir, user := StepDefaults(tt.steps)
		if !reflect.DeepEqual(env, tt.env) || workdir != tt.workdir || user != tt.user {
			t.Errorf("%s: StepDefaults = %v, %q, %q; want %v, %q, %q", tt.name, env, workdir, user, tt.env, tt.workdir, tt.user)
		}
	}
}
