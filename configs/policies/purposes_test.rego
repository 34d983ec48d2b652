# What each purpose discloses: exact response.fields, request drops and the
# binary liveness video, for realistic calls.
package consentgate_test

allowed := ["consent active", "purpose covered"]

# kyc-onboarding ------------------------------------------------------------

test_kyc_onboarding_airbank_personal_data if {
	d := decide(call(airbank_personal_data, "kyc-onboarding", ["identity", "address", "document", "national_id"]))
	d.allow == true
	d.reasons == allowed
	d.response == {"default": "drop", "fields": {
		"gender": "keep",
		"names": "keep",
		"surname": "keep",
		"birthNumber": "tokenize",
		"birthDate": "keep",
		"birthPlace": "keep",
		"citizenship": "keep",
		"permanentAddress.country": "keep",
		"permanentAddress.municipality": "keep",
		"permanentAddress.street": "keep",
		"permanentAddress.locality": "keep",
		"permanentAddress.buildingNumber": "keep",
		"permanentAddress.postalCode": "keep",
		"primaryPersonalDocument.type": "keep",
		"primaryPersonalDocument.number": "tokenize",
		"primaryPersonalDocument.validTo": "keep",
		"primaryPersonalDocument.country": "keep",
		"politicallyExposedPerson": "drop",
		"physicallyIdentified": "keep",
	}}
	d.request.drop == []
	d.binary == "deny"
}

# The birth number is disclosed (masked) only when national_id is consented.
test_kyc_onboarding_kb_identity_without_national_id if {
	d := decide(call(kb_client_identity, "kyc-onboarding", ["identity", "address", "document"]))
	d.allow == true
	d.response.fields == {
		"givenName": "keep",
		"surname": "keep",
		"birthNumber": "drop",
		"dateOfBirth": "keep",
		"gender": "keep",
		"citizenship": "keep",
		"placeOfBirth": "keep",
		"politicallyExposedPerson": "drop",
		"identityDocument.type": "keep",
		"identityDocument.number": "tokenize",
		"identityDocument.issuingCountry": "keep",
		"identityDocument.placeOfIssue": "keep",
		"identityDocument.issueDate": "keep",
		"identityDocument.expiryDate": "keep",
		"permanentAddress.street": "keep",
		"permanentAddress.descriptiveNumber": "keep",
		"permanentAddress.orientationNumber": "keep",
		"permanentAddress.postalCode": "keep",
		"permanentAddress.municipality": "keep",
		"permanentAddress.country": "keep",
		"identifyingCompanyIco": "keep",
	}
}

# Only identity consented: address and document stay with the bank.
test_kyc_onboarding_discloses_only_consented_categories if {
	d := decide(call(kb_client_identity, "kyc-onboarding", ["identity"]))
	d.allow == true
	d.response.fields == only(kb_client_identity, {
		"givenName": "keep",
		"surname": "keep",
		"dateOfBirth": "keep",
		"gender": "keep",
		"citizenship": "keep",
		"placeOfBirth": "keep",
	})
}

test_kyc_onboarding_finid_verify_sends_iin_and_phone_not_photo if {
	x := sending(
		call(finid_verify, "kyc-onboarding", ["identity", "contact", "document", "national_id"]),
		["iin", "phone", "photo"],
	)
	d := decide(x)
	d.allow == true
	d.request.drop == ["photo"]
	d.response.fields == object.union(
		{path: "keep" | some path, _ in finid_verify.fields.response},
		{"person.iin": "tokenize", "person.documentNumber": "tokenize"},
	)
}

# tokenize:identifiers tokenizes the fields the gateway names identifiers, of
# the category it is given for, and keeps the category's others.
test_tokenize_identifiers_follows_the_input if {
	x := call(airbank_personal_data, "kyc-onboarding", ["identity", "document", "national_id"])
	ids := ["primaryPersonalDocument.validTo", "names"]
	d := decide(object.union(x, {"fields": {"identifiers": ids}}))
	d.response.fields["primaryPersonalDocument.validTo"] == "tokenize"
	d.response.fields["primaryPersonalDocument.number"] == "keep"
	d.response.fields.names == "keep" # identity is kept: not tokenize:identifiers
	d.response.fields.birthNumber == "tokenize" # national_id is tokenize
}

# A purpose that uses none of the operation's categories learns nothing.
test_kyc_onboarding_on_accounts_discloses_nothing if {
	d := decide(call(airbank_accounts, "kyc-onboarding", ["identity", "account"]))
	d.allow == true
	d.response.fields == only(airbank_accounts, {})
}

# identity-confirmation --------------------------------------------------------

confirming := ["identity", "address", "document", "national_id", "verification"]

# KB's verify mode: the typed-in data goes to KB, and only whether it matches
# comes back.
test_identity_confirmation_kb_verify_sends_typed_data if {
	d := decide(sending(call(kb_verify_identity, "identity-confirmation", confirming), typed_in))
	d.allow == true
	d.reasons == allowed
	d.request.drop == []
	d.response.fields == {path: "keep" | some path, _ in kb_verify_identity.fields.response}
}

# The hand-over discloses KB's own values, which the purpose does not need: the
# policy prefers the verify mode by refusing the other.
test_identity_confirmation_refuses_the_hand_over if {
	d := decide(call(kb_client_identity, "identity-confirmation", confirming))
	d.allow == false
	d.reasons == ["purpose only verifies"]
	d.response.fields == {}
}

# Without the verification category in the consent there is nothing to learn.
test_identity_confirmation_needs_verification_consented if {
	d := decide(sending(call(kb_verify_identity, "identity-confirmation", ["identity", "address"]), typed_in))
	d.allow == false
	d.reasons == ["category not in consent"]
}

# A typed-in field whose category the end user did not consent to is not sent.
test_identity_confirmation_drops_unconsented_fields if {
	d := decide(sending(call(kb_verify_identity, "identity-confirmation", ["identity", "verification"]), typed_in))
	d.allow == true
	d.request.drop == ["birthNumber", "permanentAddress.postalCode", "permanentAddress.street"]
}

# A purpose that does not ask for verification may not call a verify mode: the
# answers are the data one guess at a time (kyc-onboarding sees the birth
# number masked; the verify mode would give it away in a few calls).
test_verify_mode_needs_a_verifying_purpose if {
	every purpose in ["kyc-onboarding", "aml-screening", "age-verification", "account-aggregation"] {
		d := decide(sending(call(kb_verify_identity, purpose, confirming), typed_in))
		d.allow == false
		"purpose does not verify" in d.reasons
	}
}

# identity-confirmation calls nothing but verify modes: not an operation that
# takes the end user's data and answers with metadata only.
test_identity_confirmation_refuses_other_operations if {
	every op in [finid_verify, biometric_create_session, airbank_accounts] {
		d := decide(call(op, "identity-confirmation", confirming))
		d.allow == false
		"purpose only verifies" in d.reasons
	}
}

# age-verification -----------------------------------------------------------

test_age_verification_airbank_derives_from_birth_date_only if {
	d := decide(call(airbank_personal_data, "age-verification", ["identity"]))
	d.allow == true
	d.reasons == allowed
	d.response.fields == only(airbank_personal_data, {"birthDate": "derive:age_over_18"})
	d.response.fields.birthNumber == "drop"
	d.response.fields.names == "drop"
}

test_age_verification_kb_birth_number_when_consented if {
	d := decide(call(kb_client_identity, "age-verification", ["identity", "national_id"]))
	d.allow == true
	d.response.fields == only(kb_client_identity, {
		"dateOfBirth": "derive:age_over_18",
		"birthNumber": "derive:age_over_18",
	})
}

test_age_verification_nested_age_sources if {
	d := decide(call(biometric_session_result, "age-verification", ["identity", "biometric"]))
	d.allow == true
	d.response.fields == only(biometric_session_result, {
		"id": "keep",
		"technologies[].name": "keep",
		"technologies[].description": "keep",
		"edocument_result.status": "keep",
		"document_recognition_result.date_of_birth": "derive:age_over_18",
		"edocument_result.date_of_birth": "derive:age_over_18",
	})
}

test_age_verification_finid_person_birth_date if {
	d := decide(call(finid_verify, "age-verification", ["identity"]))
	d.allow == true
	d.response.fields["person.birthDate"] == "derive:age_over_18"
	d.response.fields["person.iin"] == "drop"
	d.response.fields["person.name"] == "drop"
	d.response.fields.status == "keep"
}

# No age source of a consented category: nothing to derive from, refused.
test_age_verification_without_age_category_denied if {
	d := decide(call(kb_client_identity, "age-verification", ["address", "document"]))
	d.allow == false
	d.reasons == ["category not in consent"]
	d.response.fields == {}
}

# aml-screening ---------------------------------------------------------------

test_aml_screening_airbank_personal_data if {
	d := decide(call(airbank_personal_data, "aml-screening", ["identity", "pep", "national_id"]))
	d.allow == true
	d.response.fields == only(airbank_personal_data, {
		"gender": "keep",
		"names": "keep",
		"surname": "keep",
		"birthNumber": "hash",
		"birthDate": "keep",
		"birthPlace": "keep",
		"citizenship": "keep",
		"politicallyExposedPerson": "keep",
		"physicallyIdentified": "keep",
	})
	d.response.fields["permanentAddress.street"] == "drop"
	d.response.fields["primaryPersonalDocument.number"] == "drop"
}

test_aml_screening_kb_identity_pep_only if {
	d := decide(call(kb_client_identity, "aml-screening", ["pep"]))
	d.allow == true
	d.response.fields == only(kb_client_identity, {
		"politicallyExposedPerson": "keep",
	})
}

# account-aggregation ---------------------------------------------------------

test_account_aggregation_airbank_accounts if {
	d := decide(call(airbank_accounts, "account-aggregation", ["account"]))
	d.allow == true
	d.reasons == allowed
	d.response.fields == {
		"data[].accountNumber.prefix": "keep",
		"data[].accountNumber.accountNumber": "keep",
		"data[].accountNumber.bankCode": "keep",
		"data[].accountNumber.iban": "keep",
		"data[].accountNumber.bic": "keep",
	}
}

test_account_aggregation_airbank_cards if {
	d := decide(call(airbank_cards, "account-aggregation", ["account", "card"]))
	d.allow == true
	d.response.fields == {"data[].cardNumber": "keep"}
}

test_account_aggregation_banqware_accounts_with_owner_name if {
	d := decide(call(banqware_accounts, "account-aggregation", ["account", "identity"]))
	d.allow == true
	d.response.fields == {path: "keep" | some path, _ in banqware_accounts.fields.response}
}

test_account_aggregation_owner_name_needs_identity_consent if {
	d := decide(call(banqware_accounts, "account-aggregation", ["account"]))
	d.allow == true
	d.response.fields["data[].ownerName"] == "drop"
	d.response.fields["data[].iban"] == "keep"
	d.response.fields["data[].accountId"] == "keep"
}

# Cards consented, but the call would disclose identity only: refused.
test_account_aggregation_personal_data_without_identity_denied if {
	d := decide(call(airbank_personal_data, "account-aggregation", ["account", "card"]))
	d.allow == false
	d.reasons == ["category not in consent"]
}

# biometric-verification ------------------------------------------------------

test_biometric_verification_session_result if {
	d := decide(call(biometric_session_result, "biometric-verification", ["biometric"]))
	d.allow == true
	d.reasons == allowed
	d.response.fields == only(biometric_session_result, {
		"id": "keep",
		"technologies[].name": "keep",
		"technologies[].description": "keep",
		"edocument_result.status": "keep",
		"liveness_result.status": "keep",
		"liveness_result.is_live": "keep",
		"liveness_result.score": "keep",
		"face2face_result.status": "keep",
		"face2face_result.similarity": "keep",
		"face2face_result.is_same_person": "keep",
	})
	d.response.fields["edocument_result.iin"] == "drop"
	d.binary == "deny" # a JSON body is never "binary allow"
}

test_biometric_verification_session_result_without_biometric_denied if {
	d := decide(call(biometric_session_result, "biometric-verification", ["identity", "document"]))
	d.allow == false
	d.reasons == ["category not in consent"]
}

test_biometric_verification_create_session_sends_photo if {
	d := decide(sending(call(biometric_create_session, "biometric-verification", ["biometric"]), create_session_body))
	d.allow == true
	d.request.drop == ["metadata.edocument.iin.value", "metadata.edocument.phone.value"]
	d.response.fields == {"session_id": "keep", "technologies[]": "keep"}
}

# request ---------------------------------------------------------------------

# KYC onboarding has no use for the face photo: it never reaches the vendor,
# while the IIN and phone (consented) and the flow settings (metadata) do.
test_request_drops_face_photo if {
	x := sending(
		call(biometric_create_session, "kyc-onboarding", ["identity", "contact", "national_id"]),
		create_session_body,
	)
	d := decide(x)
	d.allow == true
	d.request.drop == ["metadata.face2face.photo1"]
}

# Biometric purpose, but biometric not consented: the photo stays home.
test_request_drops_photo_not_consented if {
	x := sending(call(biometric_create_session, "biometric-verification", ["identity"]), create_session_body)
	d := decide(x)
	d.allow == true
	d.request.drop == [
		"metadata.edocument.iin.value",
		"metadata.edocument.phone.value",
		"metadata.face2face.photo1",
	]
}

# A field the profile does not map was never decided on: it is dropped.
test_request_drops_unmapped_fields if {
	x := sending(
		call(biometric_create_session, "biometric-verification", ["biometric"]),
		["metadata.face2face.photo1", "metadata.face2face.photo2", "metadata.edocument.email.value"],
	)
	d := decide(x)
	d.request.drop == ["metadata.edocument.email.value", "metadata.face2face.photo2"]
}

# Metadata request fields pass even when the purpose discloses nothing.
test_request_keeps_metadata if {
	x := sending(call(biometric_create_session, "age-verification", ["identity"]), create_session_body)
	d := decide(x)
	d.allow == true
	d.request.drop == [
		"metadata.edocument.iin.value",
		"metadata.edocument.phone.value",
		"metadata.face2face.photo1",
	]
	not "metadata.edocument.skip_input" in d.request.drop
}

# binary ----------------------------------------------------------------------

test_liveness_video_allowed if {
	d := decide(call(biometric_liveness_video, "biometric-verification", ["biometric"]))
	d.allow == true
	d.reasons == allowed
	d.binary == "allow"
	d.response == {"default": "drop", "fields": {}}
}

# The video cannot be masked or tokenized: a purpose that does either to
# biometric data gets no video.
test_liveness_video_denied_where_biometric_is_tokenized if {
	d := decide(call(biometric_liveness_video, "biometric-verification", ["biometric"])) with data.purposes["biometric-verification"].categories.biometric as "tokenize"
	d.binary == "deny"
}

test_liveness_video_denied_without_biometric_consent if {
	d := decide(call(biometric_liveness_video, "biometric-verification", ["identity", "document"]))
	d.allow == false
	d.reasons == ["category not in consent"]
	d.binary == "deny"
}

# The video goes only under a purpose that uses biometrics, whatever the consent.
test_liveness_video_denied_for_other_purpose if {
	d := decide(call(biometric_liveness_video, "kyc-onboarding", ["identity", "biometric"]))
	d.allow == false
	d.reasons == ["category not in consent"]
	d.binary == "deny"
}

test_liveness_video_denied_with_revoked_consent if {
	c := object.union(consent_for("biometric", "biometric-verification", ["biometric"]), {"status": "revoked"})
	d := decide(call_with(biometric_liveness_video, "biometric-verification", c))
	d.allow == false
	d.reasons == ["consent revoked"]
	d.binary == "deny"
}

# FinID matches the face against state records: under biometric-verification
# the IIN, phone and photo are sent, and the app sees the IIN and phone masked
# and no identity data.
test_biometric_verification_finid_sends_iin_phone_photo if {
	x := sending(call(finid_verify, "biometric-verification", ["biometric", "national_id", "contact"]), ["iin", "phone", "photo"])
	d := decide(x)
	d.allow == true
	d.request.drop == []
	d.response.fields["person.iin"] == "mask"
	d.response.fields["person.phone"] == "mask"
	d.response.fields["person.surname"] == "drop"
	d.response.fields.status == "keep"
}

# reveal ----------------------------------------------------------------------

# The operation takes tokens back in these request fields (a profile's reveals).
revealing(x, names) := object.union(x, {"request": {"reveals": names}})

kb_reveals := ["birthNumber", "identityDocument.number"]

# identity-confirmation turns the birth number's and document number's tokens
# back into values toward KB.
test_reveal_where_the_purpose_reveals if {
	d := decide(revealing(sending(call(kb_verify_identity, "identity-confirmation", confirming), typed_in), kb_reveals))
	d.allow == true
	d.request.reveal == ["birthNumber", "identityDocument.number"]
}

# A category the end user did not consent to is neither sent nor revealed.
test_reveal_needs_the_category_consented if {
	d := decide(revealing(sending(call(kb_verify_identity, "identity-confirmation", ["identity", "document", "verification"]), typed_in), kb_reveals))
	d.allow == true
	d.request.reveal == ["identityDocument.number"]
}

# A purpose without a reveal list reveals nothing, and a denied call nothing.
test_no_reveal_elsewhere if {
	d := decide(revealing(call(finid_verify, "biometric-verification", ["biometric", "national_id", "contact"]), ["iin"]))
	d.allow == true
	d.request.reveal == []
	denied := decide(revealing(call(kb_client_identity, "identity-confirmation", confirming), kb_reveals))
	denied.allow == false
	denied.request.reveal == []
}
