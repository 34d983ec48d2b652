# The decision as a whole: always defined, always well formed, consent-free
# operations, and the shipped data itself.
package consentgate_test

import data.consentgate

# A spread of allowed and denied calls.
samples := [
	{},
	{"app": onboarding_web},
	kyc,
	without_consent(kyc),
	call(airbank_personal_data, "age-verification", ["identity"]),
	call(kb_client_identity, "aml-screening", ["identity", "pep", "national_id"]),
	call(banqware_accounts, "account-aggregation", ["account", "identity"]),
	call(biometric_liveness_video, "biometric-verification", ["biometric"]),
	call(biometric_liveness_video, "biometric-verification", ["identity"]),
	sending(call(biometric_create_session, "kyc-onboarding", ["identity"]), create_session_body),
	sending(without_consent(call(biometric_create_session, "kyc-onboarding", [])), create_session_body),
	tenant_urls,
	object.union(kyc, {"consent": {"status": "revoked"}, "purpose": "marketing"}),
]

tenant_urls := object.union(
	call(banqware_tenant_urls, "", []),
	{"consent_id": "", "consent": null, "request": {"fields": ["redirectUrls[]", "updateCallbackUrls[]"]}},
)

test_decision_defined_for_empty_input if {
	decide({}) == {
		"allow": false,
		"reasons": ["app not allowed vendor", "no consent header", "no purpose header"],
		"response": {"default": "drop", "fields": {}},
		"request": {"drop": [], "reveal": []},
		"binary": "deny",
	}
}

test_decision_defined_without_input if {
	consentgate.decision.allow == false
	count(consentgate.decision.reasons) > 0
}

test_decision_defined_for_app_only if {
	decide({"app": onboarding_web}) == {
		"allow": false,
		"reasons": ["app not allowed vendor", "no consent header", "no purpose header"],
		"response": {"default": "drop", "fields": {}},
		"request": {"drop": [], "reveal": []},
		"binary": "deny",
	}
}

# Wrong types everywhere: still a decision, and a deny.
test_decision_defined_for_malformed_input if {
	d := decide({
		"app": "onboarding-web",
		"vendor": ["airbank"],
		"operation": 7,
		"body": true,
		"purpose": ["kyc-onboarding"],
		"consent_id": 42,
		"consent": "c-7f3a9b",
		"fields": [],
		"request": {"fields": "metadata.face2face.photo1"},
		"now": 0,
	})
	d.allow == false
	d.reasons == ["app not allowed vendor", "no consent header", "no purpose header"]
	d.binary == "deny"
}

test_response_default_always_drop if {
	every x in samples {
		decide(x).response.default == "drop"
	}
}

test_reasons_non_empty_sorted_and_fixed if {
	fixed := {
		"consent active", "purpose covered", "operation needs no consent", "tenant operation granted",
		"no consent header", "unknown consent", "consent of another app", "consent revoked",
		"consent expired", "vendor not in consent", "no purpose header", "unknown purpose",
		"purpose not in consent", "category not in consent", "app not allowed vendor",
		"app not allowed purpose",
	}
	every x in samples {
		rs := decide(x).reasons
		count(rs) > 0
		rs == sort(rs)
		every r in rs {
			r in fixed
		}
	}
}

test_deny_names_no_field if {
	denials := [d | some x in samples; d := decide(x); d.allow == false]
	count(denials) == 6
	every d in denials {
		d.response.fields == {}
		d.request.drop == []
		d.binary == "deny"
	}
}

# Only profile fields are named; a field the vendor added is left to "drop".
test_unknown_response_fields_not_named if {
	every x in samples {
		names := {p | some p, _ in decide(x).response.fields}
		known := {p | some p, _ in object.get(x, ["fields", "response"], {})}
		names - known == set()
	}
	d := decide(call(airbank_personal_data, "kyc-onboarding", ["identity", "contact"]))
	not "email" in object.keys(d.response.fields)
	object.keys(d.response.fields) == object.keys(airbank_personal_data.fields.response)
}

# The derived attribute and nothing else for the e-shop: not the birth
# number, nor who identified the client (issue 13 §4).
test_eshop_age_check if {
	x := object.union(call(kb_client_identity, "age-verification", ["identity", "national_id", "document"]), {
		"app": eshop_checkout,
		"consent": {"app": "eshop-checkout"},
	})
	d := decide(x)
	d.allow == true
	{a | some a in d.response.fields} == {"drop", "derive:age_over_18"}
	d.response.fields.birthNumber == "derive:age_over_18"
	d.response.fields.identifyingCompanyIco == "drop"
}

# tenant and consent-free operations ----------------------------------------

test_tenant_operation_granted if {
	decide(tenant_urls) == {
		"allow": true,
		"reasons": ["tenant operation granted"],
		"response": {"default": "drop", "fields": {"redirectUrls[]": "keep", "updateCallbackUrls[]": "keep"}},
		"request": {"drop": [], "reveal": []},
		"binary": "deny",
	}
}

# Allowed the vendor, but not granted the operation by name: refused, whatever
# consent and purpose come along (issue 14 finding 3).
test_tenant_operation_needs_the_grant if {
	some headers in [{}, {"purpose": "account-aggregation"}, {"purpose": "account-aggregation", "consent_id": "c-7f3a9b"}]
	x := object.union(object.union(tenant_urls, {"app": {"id": "pfm-mobile", "role": "app"}}), headers)
	d := decide(x)
	d.allow == false
	d.reasons == ["app not allowed tenant operation"]
}

test_tenant_operation_needs_the_grant_every_time if {
	every headers in [{}, {"purpose": "account-aggregation"}] {
		d := decide(object.union(object.union(tenant_urls, {"app": {"id": "pfm-mobile", "role": "app"}}), headers))
		d.reasons == ["app not allowed tenant operation"]
	}
}

# Unmapped request fields are dropped there too.
test_tenant_operation_drops_unmapped_request_field if {
	d := decide(sending(tenant_urls, ["redirectUrls[]", "webhookSecret"]))
	d.allow == true
	d.request.drop == ["webhookSecret"]
}

# A consent header or purpose sent along changes nothing.
test_tenant_operation_ignores_consent if {
	x := object.union(tenant_urls, {"purpose": "marketing", "consent_id": "c-404"})
	d := decide(x)
	d.allow == true
	d.reasons == ["tenant operation granted"]
}

# Were a profile ever to map a personal field to a tenant operation, it would
# not pass, whatever consent and purpose the app sends along.
test_tenant_operation_passes_metadata_only if {
	x := object.union(call(banqware_tenant_urls, "kyc-onboarding", ["contact"]), {
		"fields": {
			"request": {"contactEmail": "contact"},
			"response": {"contactEmail": "contact"},
		},
		"request": {"fields": ["redirectUrls[]", "contactEmail"]},
	})
	d := decide(x)
	d.allow == true
	d.response.fields == {"redirectUrls[]": "keep", "updateCallbackUrls[]": "keep", "contactEmail": "drop"}
	d.request.drop == ["contactEmail"]
}

test_consent_free_operation_allowed if {
	x := object.union(call(banqware_update_callback, "", []), {"consent_id": "", "consent": null})
	d := decide(x)
	d.allow == true
	d.reasons == ["operation needs no consent"]
	d.response.fields == {"updateId": "keep", "status": "keep"}
}

test_consent_free_operation_needs_vendor if {
	x := object.union(call(banqware_update_callback, "", []), {"consent_id": "", "consent": null, "app": eshop_checkout})
	d := decide(x)
	d.allow == false
	d.reasons == ["app not allowed vendor"]
	d.response.fields == {}
}

# Only the listed operations are consent-free, even when all-metadata.
test_other_metadata_operation_needs_consent if {
	x := object.union(call(banqware_create_user, "", []), {"consent_id": "", "consent": null})
	d := decide(x)
	d.allow == false
	d.reasons == ["no consent header", "no purpose header"]
}

# erasure operations ----------------------------------------------------------

erase_bank_consent(status) := object.union(call(banqware_delete_consent, "", ["account", "identity"]), {
	"erasure": true,
	"consent": object.union(consent_for("banqware", "account-aggregation", ["account", "identity"]), {"status": status}),
})

# A withdrawal is carried out after the consent is withdrawn, without a purpose.
test_erasure_allowed_under_withdrawn_consent if {
	every status in ["active", "revoked", "expired"] {
		d := decide(erase_bank_consent(status))
		d.allow == true
		d.reasons == ["erasure of the end user's data"]
	}
}

test_erasure_passes_metadata_only if {
	x := object.union(erase_bank_consent("revoked"), {"fields": {"request": {}, "response": {"consentId": "metadata", "iban": "account"}}})
	decide(x).response.fields == {"consentId": "keep", "iban": "drop"}
}

# The rest of the consent rules hold for erasures too.
test_erasure_needs_own_consent_for_the_vendor if {
	other_app := object.union(erase_bank_consent("revoked"), {"consent": {"app": "pfm-mobile"}})
	decide(other_app).reasons == ["consent of another app"]
	other_vendor := object.union(erase_bank_consent("revoked"), {"consent": {"vendors": ["kb"]}})
	decide(other_vendor).reasons == ["vendor not in consent"]
	decide(object.union(erase_bank_consent("revoked"), {"consent_id": "", "consent": null})).reasons == ["no consent header"]
}

# Only an erasure operation runs under a withdrawn consent.
test_withdrawn_consent_denies_everything_else if {
	x := object.union(call(banqware_accounts, "account-aggregation", ["account"]), {"consent": {"status": "revoked"}})
	decide(x).reasons == ["consent revoked"]
	decide(object.union(x, {"erasure": "yes"})).reasons == ["consent revoked"]
}

# the shipped data ------------------------------------------------------------

test_data_actions_valid if {
	valid := {
		"keep", "drop", "mask", "hash", "tokenize", "derive:age_over_18", "derive:age_over_21",
		"derive:country_only", "derive:year_only", "derive:last4",
	}
	category_only := {"tokenize:identifiers"}
	categories := {
		"identity", "contact", "address", "document", "pep",
		"biometric", "account", "card", "national_id", "verification",
	}
	every _, purpose in data.purposes {
		every category, action in purpose.categories {
			category in categories
			action in (valid | category_only)
		}
		object.get(purpose, "age_source_action", "drop") in valid
	}
}

test_data_apps_name_known_purposes if {
	vendors := {"kb", "airbank", "biometric", "finid", "banqware"}
	every _, app in data.apps {
		every p in app.purposes {
			data.purposes[p]
		}
		every v in app.vendors {
			v in vendors
		}
	}
}
