package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/ratelimit"
)

// Store is the part of domain.Store that auth reads and writes: teams, users, keys and
// the audit log, and the quota usage a team report shows.
type Store interface {
	domain.TeamStore
	domain.UserStore
	domain.KeyStore
	domain.AuditStore
	TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error)
}

// Services are the account services, one per job, on one store: New makes them
// together so that they share a clock, a logger, the session signer, the login throttle
// and the team cache. Each is safe for concurrent use.
type Services struct {
	// Keys implements domain.KeyService: API keys, and authenticating every request
	// (a key or a console session).
	Keys *Keys
	// Sessions implements domain.SessionService: console logins and logouts.
	Sessions *Sessions
	// Teams implements domain.TeamService: teams, their quotas, plans and runtimes.
	Teams *Teams
	// Users implements domain.UserService: a team's users, their roles and passwords.
	Users *Users
	// Audit implements domain.AuditLog: writing and reading the audit log.
	Audit *AuditLog
}

// Login throttle defaults: each account (email) may try this many logins per window,
// after an idle window; then one more every window/attempts (GCRA).
const (
	DefaultLoginAttempts = 10
	DefaultLoginWindow   = 15 * time.Minute
)

// options are what the Options set; New fills the defaults.
type options struct {
	now           func() time.Time
	log           *slog.Logger
	signer        *Signer
	sessionTTL    time.Duration
	defaultQuota  domain.Quota
	defaultPlan   string
	checkPlan     func(id string) error
	runtimes      []string
	throttle      ratelimit.Limiter
	loginAttempts int64
	loginWindow   time.Duration
	ownerFile     string
}

// Option configures the Services.
type Option func(*options)

// WithClock sets the clock for creation, revocation, login and last-use times (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger for failures that do not fail a request, such as not
// recording a key's last use or an audit entry (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithSessions enables console logins: tokens signed by signer, valid for ttl (<= 0:
// DefaultSessionTTL). Without it Login answers that logins are off.
func WithSessions(signer *Signer, ttl time.Duration) Option {
	return func(o *options) { o.signer, o.sessionTTL = signer, ttl }
}

// WithTeamDefaults sets the quota and plan new teams get when the request leaves them
// out, and the check a plan id must pass (nil: any id).
func WithTeamDefaults(q domain.Quota, plan string, checkPlan func(id string) error) Option {
	return func(o *options) { o.defaultQuota, o.defaultPlan, o.checkPlan = q, plan, checkPlan }
}

// WithRuntimes names the runtimes the server enables: a team's allowed_runtimes may
// name only these (without the option: any well-formed name).
func WithRuntimes(names []string) Option {
	return func(o *options) { o.runtimes = slices.Clone(names) }
}

// WithLoginThrottle limits login attempts per account with l, shared by every replica
// when l is: attempts per window (<= 0: DefaultLoginAttempts, DefaultLoginWindow),
// counted by lower-cased email whether or not the account exists and whatever the
// client's address. A nil l leaves logins unthrottled here (the API still limits per
// address). Own password changes spend from the same budget.
func WithLoginThrottle(l ratelimit.Limiter, attempts int64, window time.Duration) Option {
	return func(o *options) { o.throttle, o.loginAttempts, o.loginWindow = l, attempts, window }
}

// WithOwnerFile names the file BootstrapOwner wrote the first console login to: the
// first successful login of that user removes it, so the password does not outlive its
// use on disk.
func WithOwnerFile(path string) Option { return func(o *options) { o.ownerFile = path } }

// New returns the account services on store.
func New(store Store, opts ...Option) (*Services, error) {
	if store == nil {
		return nil, errors.New("auth: New needs a store")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.sessionTTL <= 0 {
		o.sessionTTL = DefaultSessionTTL
	}
	if o.loginAttempts <= 0 {
		o.loginAttempts = DefaultLoginAttempts
	}
	if o.loginWindow <= 0 {
		o.loginWindow = DefaultLoginWindow
	}
	c := &core{store: store, now: o.now, log: o.log.With(logkey.Subsystem, "auth"), signer: o.signer,
		throttle: o.throttle, loginAttempts: o.loginAttempts, loginWindow: o.loginWindow}
	c.teams.ttl = teamCacheTTL
	sessions := &Sessions{core: c, ttl: o.sessionTTL, ownerFile: o.ownerFile}
	return &Services{
		Keys:     &Keys{core: c, sessions: sessions},
		Sessions: sessions,
		Teams: &Teams{core: c, defaultQuota: o.defaultQuota, defaultPlan: o.defaultPlan,
			checkPlan: o.checkPlan, runtimes: o.runtimes},
		Users: &Users{core: c},
		Audit: &AuditLog{core: c},
	}, nil
}

// core is what the account services share. Its fields are set once by New; teams has
// its own lock.
type core struct {
	store  Store
	now    func() time.Time
	log    *slog.Logger
	signer *Signer // nil: console sessions are off
	// throttle, when set, limits login attempts per account (loginAttempts per
	// loginWindow).
	throttle      ratelimit.Limiter
	loginAttempts int64
	loginWindow   time.Duration
	teams         teamCache
}

// record appends an audit entry. A failure is logged: the action already happened, and
// failing the request now would only hide that from the caller.
func (c *core) record(ctx context.Context, e *domain.AuditEntry) {
	if e.TeamID == "" {
		return
	}
	if e.At.IsZero() {
		e.At = c.now().UTC()
	}
	if err := c.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		c.log.ErrorContext(ctx, "writing audit entry", "action", e.Action, logkey.TeamID, e.TeamID, logkey.Err, err)
	}
}

// audit records an action by p on target.
func (c *core) audit(ctx context.Context, p domain.Principal, action, target string) {
	c.record(ctx, NewAuditEntry(ctx, p, action, target, 0, nil))
}

// throttleAccount spends one login attempt of the account email (lower-cased), known or
// not, and refuses when its budget is spent, whatever the client's address. Every
// attempt counts, not only failed ones: the check comes before the password is looked
// at, so that a throttled guess learns nothing, and the answer is the same for an
// unknown email. A limiter that fails (Redis away) admits the attempt, with a warning.
func (c *core) throttleAccount(ctx context.Context, email string) error {
	if c.throttle == nil {
		return nil
	}
	// Hashed: a bounded key that keeps addresses out of Redis.
	sum := sha256.Sum256([]byte(email))
	d, err := c.throttle.Allow(ctx, "login-account:"+hex.EncodeToString(sum[:16]), c.loginAttempts, c.loginWindow)
	if err != nil {
		c.log.WarnContext(ctx, "login throttle unavailable; admitting the attempt", logkey.Err, err)
		return nil
	}
	if d.Allowed {
		return nil
	}
	wait := max(d.RetryAfter.Round(time.Second), time.Second)
	return &domain.Error{Kind: domain.KindQuotaExceeded,
		Message: fmt.Sprintf("too many login attempts for this account: try again in %s, or ask a team admin to reset the password", wait),
		Err: &domain.QuotaError{Quota: "login_attempts", Limit: float64(c.loginAttempts), Used: float64(c.loginAttempts),
			RetryAfter: d.RetryAfter}}
}
