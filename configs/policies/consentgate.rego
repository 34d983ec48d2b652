# METADATA
# title: The decision on a vendor call
# description: |
#   The decision consentgate asks for on every vendor call (docs/policy.md).
#   This module only assembles it; the rules that say who
#   may see what live in apps.rego (app permissions), consent.rego (the end
#   user's consent) and purposes.rego (what each purpose discloses).
#
#   It must be defined for every input, even {}: the gateway treats an undefined
#   decision as a broken policy. So every part below is total, and allow is
#   exactly "no deny reason", which keeps reasons non-empty either way.
# related_resources:
#   - ref: https://github.com/consentgate/consentgate/blob/main/docs/policy.md
#     description: the input, the decision and the reasons
package consentgate

import data.consentgate.apps
import data.consentgate.consent
import data.consentgate.purposes

# METADATA
# title: Decision
# description: The one rule the gateway queries (data.consentgate.decision).
# entrypoint: true
decision := {
	"allow": allow,
	"reasons": reasons,
	# Vendors add response fields without notice: whatever is not named is dropped.
	"response": {"default": "drop", "fields": response_fields},
	"request": {"drop": request_drop, "reveal": request_reveal},
	"binary": binary,
}

# Operations that concern no end user need neither consent nor purpose.
consent_free if input.operation in data.consent_free_operations

# Operations on the tenant (a profile's class: tenant), such as the URLs the
# company registered at a hub, concern no end user either, but change what
# every app relies on: only apps granted the operation by name may call them.
tenant if input.class == "tenant"

consent_free if tenant

deny contains "app not allowed tenant operation" if {
	tenant
	not apps.tenant_operation_allowed
}

# Erasure operations (a profile's erases) carry out a withdrawal: they run under
# the end user's revoked or expired consent, need no purpose, and only metadata
# passes either way. Everything else about the consent still holds: it must be
# the app's own and name the vendor.
erasure if input.erasure == true

withdrawn := {"consent revoked", "consent expired"}

deny contains "app not allowed vendor" if not apps.vendor_allowed

deny contains "app not allowed purpose" if {
	not consent_free
	not erasure
	purposes.name
	not apps.purpose_allowed
}

deny contains reason if {
	not consent_free
	some reason in consent.deny
	not erasure_of_withdrawn(reason)
}

erasure_of_withdrawn(reason) if {
	erasure
	reason in withdrawn
}

deny contains reason if {
	not consent_free
	not erasure
	some reason in purposes.deny
}

default allow := false

allow if count(deny) == 0

reasons := sort(deny) if {
	not allow
} else := ["tenant operation granted"] if {
	tenant
} else := ["operation needs no consent"] if {
	consent_free
} else := ["erasure of the end user's data"] if {
	erasure
} else := ["consent active", "purpose covered"]

# The operation's field -> category maps from the vendor profile.
response_map := m if {
	m := input.fields.response
	is_object(m)
} else := {}

request_map := m if {
	m := input.fields.request
	is_object(m)
} else := {}

# Every field of the profile is named, so the audit record can say what was
# withheld; fields the profile does not know are left to the default. The
# action of each category is found once per decision (field_action) and then
# only looked up per field.
response_fields := {} if {
	not allow
} else := object.union(
	{path: action_on(path, category) | some path, category in response_map},
	{path: purposes.definition.age_source_action | not consent_free; not erasure; some path in purposes.age_paths},
)

# The action on each category the response has: a few categories, looked up
# once each rather than once per field.
field_action := {category: object.get(category_table, category, "drop") | some category in purposes.response_categories}

# tokenize:identifiers tokenizes the category's identifiers (national ids,
# document numbers: input.fields.identifiers) and keeps its other fields.
action_on(path, category) := "tokenize" if {
	field_action[category] == "tokenize:identifiers"
	identifiers[path]
} else := "keep" if {
	field_action[category] == "tokenize:identifiers"
} else := field_action[category]

identifiers contains path if {
	some path in input.fields.identifiers
}

# Metadata (ids, statuses) is not personal and every call needs it.
category_table := {"metadata": "keep"} if {
	consent_free
} else := {"metadata": "keep"} if {
	erasure
} else := object.union(purposes.category_actions, {"metadata": "keep"})

# Request fields the app sent that the vendor must not receive. A field the
# profile does not map is dropped too: nobody decided it may leave.
request_drop := [] if {
	not allow
} else := sort([path |
	some path in present
	not request_permitted(path)
])

# Request fields in which a token the app sends back is replaced by its value:
# fields the operation takes tokens in (the profile's reveals) that this call
# may send, of a category the purpose reveals and the end user consented to.
request_reveal := [] if {
	not allow
} else := sort([name |
	some name in input.request.reveals
	is_string(name)
	request_permitted(name)
	request_map[name] in purposes.revealable
])

present contains path if {
	some path in input.request.fields
	is_string(path)
}

request_permitted(path) if request_map[path] == "metadata"

request_permitted(path) if {
	not consent_free
	not erasure
	request_map[path] in purposes.disclosed
}

default binary := "deny"

binary := "allow" if {
	allow
	purposes.binary_allowed
}
