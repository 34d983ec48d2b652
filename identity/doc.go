// Package identity is who is calling, as the verified TLS client certificate
// proves it (spiffe://<trust domain>/<role>/<name>): read once per request by
// one middleware on every listener, and checked per route with Require.
package identity
