// Package oauth brokers end users' OAuth2 authorizations at vendors: an app
// starts one for its consent, the browser comes back to the callbacks listener,
// and the sealed tokens serve the calls made under that consent.
package oauth
