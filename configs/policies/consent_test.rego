# Every deny reason, alone and together.
package consentgate_test

kyc := call(airbank_personal_data, "kyc-onboarding", ["identity", "address", "document"])

# kyc with the consent record changed.
kyc_consent(change) := object.union(kyc, {"consent": change})

denied(x, reasons) if {
	d := decide(x)
	d.allow == false
	d.reasons == reasons
	d.response == {"default": "drop", "fields": {}}
	d.request.drop == []
	d.binary == "deny"
}

test_baseline_allowed if {
	d := decide(kyc)
	d.allow == true
	d.reasons == ["consent active", "purpose covered"]
}

test_no_consent_header if {
	denied(without_consent(kyc), ["no consent header"])
}

test_unknown_consent if {
	denied(object.union(kyc, {"consent_id": "c-404", "consent": null}), ["unknown consent"])
}

# A record for another id than the header names covers nothing.
test_consent_record_for_another_id if {
	denied(object.union(kyc, {"consent_id": "c-other"}), ["unknown consent"])
}

test_consent_of_another_app if {
	denied(kyc_consent({"app": "eshop-checkout"}), ["consent of another app"])
}

test_consent_revoked if {
	denied(kyc_consent({"status": "revoked"}), ["consent revoked"])
}

# Only an active consent is honoured.
test_consent_unknown_status_not_honoured if {
	denied(kyc_consent({"status": "pending"}), ["consent revoked"])
}

test_consent_expired_by_status if {
	denied(kyc_consent({"status": "expired"}), ["consent expired"])
}

# Expired from the instant expires_at is reached, not a second later.
test_consent_expired_by_date if {
	denied(object.union(kyc, {"now": "2027-11-21T09:00:00Z"}), ["consent expired"])
	denied(object.union(kyc, {"now": "2028-01-01T00:00:00Z"}), ["consent expired"])
	decide(object.union(kyc, {"now": "2027-11-21T08:59:59Z"})).allow == true
}

# The zero time Go writes for a missing expiry, or garbage, proves nothing.
test_consent_expiry_unparsable_is_expired if {
	denied(kyc_consent({"expires_at": "0001-01-01T00:00:00Z"}), ["consent expired"])
	denied(kyc_consent({"expires_at": "next year"}), ["consent expired"])
	denied(object.union(kyc, {"now": ""}), ["consent expired"])
}

test_vendor_not_in_consent if {
	denied(kyc_consent({"vendors": ["kb", "finid"]}), ["vendor not in consent"])
}

test_no_purpose_header if {
	denied(object.union(kyc, {"purpose": ""}), ["no purpose header"])
}

# A purpose the policy does not know is neither given to any app nor, here,
# consented to.
test_unknown_purpose if {
	denied(
		object.union(kyc, {"purpose": "marketing"}),
		["app not allowed purpose", "purpose not in consent", "unknown purpose"],
	)
}

test_purpose_not_in_consent if {
	denied(kyc_consent({"purposes": ["age-verification", "aml-screening"]}), ["purpose not in consent"])
}

test_category_not_in_consent if {
	denied(kyc_consent({"categories": ["pep", "biometric"]}), ["category not in consent"])
}

test_app_not_allowed_vendor if {
	x := object.union(
		call(biometric_session_result, "age-verification", ["identity"]),
		{"app": eshop_checkout, "consent": {"app": "eshop-checkout"}},
	)
	denied(x, ["app not allowed vendor"])
}

test_app_not_allowed_purpose if {
	x := object.union(kyc, {"app": eshop_checkout, "consent": {"app": "eshop-checkout"}})
	denied(x, ["app not allowed purpose"])
}

# An app data.apps does not list may use nothing.
test_unlisted_app if {
	x := object.union(kyc, {"app": {"id": "intranet", "role": "app", "uri": "spiffe://consentgate.dev/app/intranet"}})
	denied(x, ["app not allowed purpose", "app not allowed vendor", "consent of another app"])
}

test_multiple_deny_reasons if {
	x := object.union(call(biometric_session_result, "kyc-onboarding", ["pep"]), {
		"app": eshop_checkout,
		"consent": {
			"status": "revoked",
			"expires_at": "2026-11-01T00:00:00Z",
			"vendors": ["airbank"],
			"purposes": ["age-verification"],
		},
	})
	denied(x, [
		"app not allowed purpose",
		"app not allowed vendor",
		"category not in consent",
		"consent expired",
		"consent of another app",
		"consent revoked",
		"purpose not in consent",
		"vendor not in consent",
	])
}

# Without a consent there is nothing to check it against: only the header
# reasons and what does not depend on the consent.
test_no_consent_and_no_purpose if {
	denied(object.union(without_consent(kyc), {"purpose": ""}), ["no consent header", "no purpose header"])
	denied(
		object.union(kyc, {"consent_id": "c-404", "consent": null, "purpose": "marketing"}),
		["app not allowed purpose", "unknown consent", "unknown purpose"],
	)
}
