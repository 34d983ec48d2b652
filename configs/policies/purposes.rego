# METADATA
# title: What each purpose discloses
# description: |
#   What a purpose discloses, in data categories: data.purposes maps each purpose to
#   a category -> action table (and age-verification to a derivation from the
#   age-source fields, data.age_sources). Only categories both the purpose uses
#   and the end user consented to are disclosed.
package consentgate.purposes

import data.consentgate.consent

# The X-Purpose header ("" when absent).
name := p if {
	p := input.purpose
	is_string(p)
	p != ""
}

definition := data.purposes[name]

deny contains "no purpose header" if not name

deny contains "unknown purpose" if {
	name
	not definition
}

deny contains "purpose not in consent" if {
	name
	consent.found
	not consent.purpose_listed
}

# A call whose purpose would disclose only categories the user never consented
# to is refused rather than answered with nothing.
deny contains "category not in consent" if {
	consent.found
	count(would_disclose) > 0
	count(would_disclose & consent.categories) == 0
}

# A purpose that only verifies sends what the end user typed in and takes back
# whether it matches: any other operation (one that would hand the vendor's own
# values over, or take the end user's data and answer nothing) is refused, so
# the app must use the vendor's verify mode (kb.verifyIdentity).
deny contains "purpose only verifies" if {
	definition.verify_only
	not verifies
}

# A verify operation answers whether typed-in data matches, which is the data
# itself one guess at a time: only a purpose that asks for verification may
# call it, never one that sees the value masked or hashed, or not at all.
deny contains "purpose does not verify" if {
	definition
	"verification" in response_categories
	not "verification" in uses
}

# The operation's personal response categories are verification results only.
verifies if {
	"verification" in response_categories
	every category in response_categories {
		category in {"verification", "metadata"}
	}
}

# The binary body (the liveness video) cannot be minimised: it goes whole or not
# at all, and not at all is a refusal.
deny contains "category not in consent" if {
	definition
	consent.found
	input.body == "binary"
	not binary_allowed
}

# Categories the purpose makes use of.
uses contains category if {
	some category, action in definition.categories
	action != "drop"
}

# Categories that flow in this call, in either direction.
disclosed := uses & consent.categories

# Categories whose tokens the purpose turns back into values toward the vendor
# (the purpose's reveal list), where the end user consented to them.
revealable contains category if {
	some category in object.get(definition, "reveal", [])
	category in consent.categories
}

# The categories of the operation's response fields. Rules below iterate over
# these few categories rather than over every field.
response_categories := {category | some category in input.fields.response}

# Personal categories the response would disclose under the purpose, before the
# consent is looked at.
would_disclose contains category if {
	some category in response_categories
	category != "metadata"
	category in uses
}

would_disclose contains category if {
	definition.age_source_action
	some path, category in input.fields.response
	category != "metadata"
	age_source(path)
}

would_disclose contains "biometric" if {
	input.body == "binary"
	"biometric" in uses
}

# The video goes whole, so only where the purpose keeps biometric data as it
# is: a purpose that masks or tokenizes it gets no video.
binary_allowed if {
	input.body == "binary"
	"biometric" in disclosed
	definition.categories.biometric == "keep"
}

# A field is an age source by the last segment of its path.
age_source(path) if {
	segments := split(path, ".")
	trim_suffix(segments[count(segments) - 1], "[]") in data.age_sources
}

# The action on each category this call may disclose: the purpose's table,
# limited to the categories the end user consented to. Other categories drop.
category_actions := {category: action |
	some category, action in definition.categories
	category in consent.categories
}

# Response fields an age is derived from, when the purpose derives one and the
# field's category is consented.
age_paths contains path if {
	definition.age_source_action
	some path, category in input.fields.response
	category != "metadata"
	category in consent.categories
	age_source(path)
}
