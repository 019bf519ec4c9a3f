package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// PortToken is the traffic token of a sandbox whose agent token is accessToken and whose
// traffic token (allowPublicTraffic false) is trafficToken: what a client sends in
// E2B-Traffic-Access-Token to reach the sandbox's ports through the proxy.
//
// A sandbox with private traffic has its own random token, which opens every port but
// the agent's. A public sandbox still has private ports (its template's services, such
// as the code interpreter); its traffic token, which opens only those, is derived from
// the access token (HMAC-SHA256), so it needs no storage and reveals nothing of the
// access token: a client may hand it to a browser without giving away the agent.
//
// Both tokens are secrets given only to callers who may change the sandbox (the
// sandboxes:write scope), on create and connect. An empty accessToken yields "" (no
// token at all), never a value anyone could compute.
func PortToken(accessToken, trafficToken string) string {
	if trafficToken != "" {
		return trafficToken
	}
	if accessToken == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(accessToken))
	m.Write([]byte("warren sandbox traffic token v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// PortToken is the sandbox's traffic token (see the function PortToken).
func (sb *Sandbox) PortToken() string { return PortToken(sb.AccessToken, sb.TrafficToken) }
