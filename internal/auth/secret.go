// Package auth is Warren's accounts: API keys, console sessions, teams, users and the audit log.
//
// A key's secret is "sk_" followed by 40 random base62 characters (about 238 bits).
// Only its SHA-256 hash is stored; the secret is shown once, when the key is made. The
// short non-secret prefix of the secret is stored too, so people can tell keys apart
// in listings.
//
// New makes the account services on a Store, one type per job, sharing one unexported
// core (store, clock, logger, session signer, login throttle, team cache): Keys
// (domain.KeyService, and authentication of every request), Sessions
// (domain.SessionService), Teams (domain.TeamService), Users (domain.UserService) and
// AuditLog (domain.AuditLog). Bootstrap gives a fresh installation its first admin key,
// and BootstrapOwner its first console login.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// SecretPrefix starts every API key secret, so that secret scanners and people
	// can recognize one.
	SecretPrefix = "sk_"
	// secretRandLen is the number of random base62 characters after SecretPrefix.
	secretRandLen = 40
	// shownLen is how many leading random characters the listed prefix reveals. The
	// remaining 32 characters still carry 190 bits.
	shownLen = 8

	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// NewSecret returns a new random API key secret and its displayable prefix
// ("sk_" and the first 8 random characters).
func NewSecret() (secret, prefix string) {
	var b strings.Builder
	b.Grow(len(SecretPrefix) + secretRandLen)
	b.WriteString(SecretPrefix)
	buf := make([]byte, 64)
	for n := 0; n < secretRandLen; {
		if _, err := rand.Read(buf); err != nil {
			// crypto/rand does not fail on supported platforms; if it did, nothing
			// safe could be done here.
			panic("crypto/rand failed: " + err.Error())
		}
		for _, c := range buf {
			if n == secretRandLen {
				break
			}
			// Rejection sampling keeps every character equally likely: 248 = 4*62,
			// so c%62 is uniform over the accepted bytes.
			if c >= 248 {
				continue
			}
			b.WriteByte(base62[c%62])
			n++
		}
	}
	secret = b.String()
	return secret, secret[:len(SecretPrefix)+shownLen]
}

// Hash returns the hex SHA-256 of a secret, as stored and looked up.
//
// A fast, unsalted hash is right here, unlike for passwords: a secret has ~238 bits
// from crypto/rand, so there is no dictionary to try and brute force is hopeless
// whatever the hash costs, while bcrypt or argon2 would add tens of milliseconds to
// every API request. Being deterministic, the hash doubles as the lookup key, so no
// per-key comparison (and no timing side channel on the secret) is involved.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports whether s has the shape of a secret made by NewSecret.
func wellFormed(s string) bool {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok || len(rest) != secretRandLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(base62, rest[i]) < 0 {
			return false
		}
	}
	return true
}
