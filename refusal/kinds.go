package refusal

// Kind is the stable last part of a problem type, urn:consentgate:problem:<kind>.
// Every kind is documented in docs/app-developers.md (a test keeps it so).
type Kind string

// Who is calling.
const (
	// IdentityRequired: no verified client certificate with a consentgate
	// identity reached the handler (401).
	IdentityRequired Kind = "identity-required"
	// RoleNotAllowed: the identity is proven, but its role may not use this
	// route (403). It means nothing else.
	RoleNotAllowed Kind = "role-not-allowed"
	// CallerNotRecognised: a call at the callbacks listener did not prove it
	// comes from the vendor (its networks, certificate, secret or URL token).
	CallerNotRecognised Kind = "callback-caller-not-recognised"
)

// What was asked.
const (
	NoRoute              Kind = "no-route"
	BadRequest           Kind = "bad-request"
	TooLarge             Kind = "request-too-large"
	TooComplex           Kind = "request-too-complex"
	MediaType            Kind = "unsupported-media-type"
	Encoding             Kind = "unsupported-content-encoding"
	MalformedBody        Kind = "malformed-body"
	MalformedQuery       Kind = "malformed-query"
	UndeclaredField      Kind = "undeclared-field"
	NotImplemented       Kind = "not-implemented"
	NotFound             Kind = "not-found"
	MethodNotAllowed     Kind = "method-not-allowed"
	Forbidden            Kind = "forbidden"
	ReturnToNotAllowed   Kind = "return-to-not-allowed"
	ConsentNotUsable     Kind = "consent-not-usable"
	ResourceNotOwned     Kind = "resource-not-owned"
	ResourceUnknown      Kind = "resource-unknown"
	TokenNotRevealable   Kind = "token-not-revealable"
	PathFieldWithheld    Kind = "path-field-withheld"
	AuthorizationNeeded  Kind = "authorization-required"
	AuthorizationFailure Kind = "authorization-failed"
)

// What the policy and the vendor's budget said.
const (
	PolicyDenied Kind = "policy-denied"
	PolicyBusy   Kind = "policy-busy"
	Quota        Kind = "vendor-quota"
	ConsentLimit Kind = "consent-call-limit"
	GatewayBusy  Kind = "gateway-busy"
)

// What failed on consentgate's side or the vendor's: the vendor was not
// called, or its answer was not passed on.
const (
	Credentials       Kind = "credentials-unavailable"
	TokenVault        Kind = "token-vault-unavailable"
	ConsentStore      Kind = "consent-registry-unavailable"
	AuditUnavailable  Kind = "audit-unavailable"
	NotReady          Kind = "not-ready"
	Internal          Kind = "internal"
	VendorUnreachable Kind = "vendor-unreachable"
	VendorTimeout     Kind = "vendor-timeout"
	VendorRefused     Kind = "vendor-response-refused"
)
