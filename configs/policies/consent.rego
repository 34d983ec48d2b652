# METADATA
# title: The end user's consent
# description: |
#   The end user's consent, as the consent registry found it for the X-Consent-Id
#   header, and why it does not cover this call. Anything missing or malformed
#   counts against the call: fail closed.
package consentgate.consent

# The X-Consent-Id header ("" when absent).
id := i if {
	i := input.consent_id
	is_string(i)
	i != ""
}

# The record for that id. A record for another id is a gateway bug; it covers
# nothing.
record := c if {
	id
	c := input.consent
	is_object(c)
	c.id == id
}

# What the rest of the policy may know of the record: facts that are the same
# for every end user in the same situation. Rules outside this package read
# these, never id or record, so that the gateway may remember a decision for
# everyone alike (docs/policy.md, "Decisions for any end user").
found if record

# The categories the end user consented to ({} without a record).
categories := {c | some c in record.categories}

# The X-Purpose header names a purpose the end user consented to.
purpose_listed if input.purpose in record.purposes

deny contains "no consent header" if not id

deny contains "unknown consent" if {
	id
	not record
}

deny contains "consent of another app" if {
	record
	not own
}

own if record.app == input.app.id

# A consent is honoured only while its status is active. A status the policy
# does not know is treated like a withdrawn consent.
deny contains "consent revoked" if {
	record
	not record.status in {"active", "expired"}
}

deny contains "consent expired" if record.status == "expired"

# Expired once now reaches expires_at; a time that does not parse cannot prove
# the consent still runs.
deny contains "consent expired" if {
	record
	not running
}

running if time.parse_rfc3339_ns(input.now) < time.parse_rfc3339_ns(record.expires_at)

deny contains "vendor not in consent" if {
	record
	not input.vendor in record.vendors
}
