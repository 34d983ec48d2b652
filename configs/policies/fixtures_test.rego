# Realistic inputs for the policy tests: the operations below copy their field
# maps from configs/vendors/*.yaml, as the gateway sends them.
package consentgate_test

import data.consentgate

now := "2026-11-21T10:00:00Z"

onboarding_web := {"id": "onboarding-web", "role": "app", "uri": "spiffe://consentgate.dev/app/onboarding-web"}

eshop_checkout := {"id": "eshop-checkout", "role": "app", "uri": "spiffe://consentgate.dev/app/eshop-checkout"}

# The decision for one input.
decide(x) := d if {
	d := consentgate.decision with input as x
}

# An active consent of onboarding-web's user, granted an hour ago for a year.
consent_for(vendor, purpose, categories) := {
	"id": "c-7f3a9b",
	"app": "onboarding-web",
	"subject": "5d41402abc4b2a76b9719d911017c592ae2f6a0e4c3bd8f1c6f6b2d1a9e0c3f7",
	"vendors": [vendor],
	"purposes": [purpose],
	"categories": categories,
	"status": "active",
	"granted_at": "2026-11-21T09:00:00Z",
	"expires_at": "2027-11-21T09:00:00Z",
}

# onboarding-web calls op for purpose under a consent granting categories.
call(op, purpose, categories) := call_with(op, purpose, consent_for(op.vendor, purpose, categories))

call_with(op, purpose, consent) := {
	"app": onboarding_web,
	"vendor": op.vendor,
	"operation": op.id,
	"method": op.method,
	"path": op.path,
	"body": op.body,
	"purpose": purpose,
	"consent_id": consent.id,
	"consent": consent,
	"fields": object.union(op.fields, {"identifiers": identifiers_of(op)}),
	"class": object.get(op, "class", "subject"),
	"request": {"fields": []},
	"now": now,
}

# The response fields the gateway names identifiers (configs.IdentifierField):
# national ids and document numbers.
identifiers_of(op) := sort([path |
	some path, category in op.fields.response
	is_identifier(path, category)
])

is_identifier(_, "national_id")

is_identifier(path, "document") if {
	segments := split(path, ".")
	contains(lower(segments[count(segments) - 1]), "number")
}

# The same call, with the app's request body holding the given field paths.
sending(x, present) := object.union(x, {"request": {"fields": present}})

# A call without X-Consent-Id: no consent looked up.
without_consent(x) := object.union(x, {"consent_id": "", "consent": null})

# Every response field of op named "drop", overridden by the given actions: the
# exact response.fields expected when only those fields pass.
only(op, actions) := object.union({path: "drop" | some path, _ in op.fields.response}, actions)

airbank_personal_data := {
	"vendor": "airbank",
	"id": "airbank.personalData",
	"method": "GET",
	"path": "/openapi/glClientIdentity/v1/personalData",
	"body": "json",
	"fields": {"request": {}, "response": {
		"gender": "identity",
		"names": "identity",
		"surname": "identity",
		"birthNumber": "national_id",
		"birthDate": "identity",
		"birthPlace": "identity",
		"citizenship": "identity",
		"permanentAddress.country": "address",
		"permanentAddress.municipality": "address",
		"permanentAddress.street": "address",
		"permanentAddress.locality": "address",
		"permanentAddress.buildingNumber": "address",
		"permanentAddress.postalCode": "address",
		"primaryPersonalDocument.type": "document",
		"primaryPersonalDocument.number": "document",
		"primaryPersonalDocument.validTo": "document",
		"primaryPersonalDocument.country": "document",
		"politicallyExposedPerson": "pep",
		"physicallyIdentified": "identity",
	}},
}

airbank_accounts := {
	"vendor": "airbank",
	"id": "airbank.accounts",
	"method": "GET",
	"path": "/openapi/glClientIdentity/v1/accounts",
	"body": "json",
	"fields": {"request": {}, "response": {
		"data[].accountNumber.prefix": "account",
		"data[].accountNumber.accountNumber": "account",
		"data[].accountNumber.bankCode": "account",
		"data[].accountNumber.iban": "account",
		"data[].accountNumber.bic": "account",
	}},
}

airbank_cards := {
	"vendor": "airbank",
	"id": "airbank.cards",
	"method": "GET",
	"path": "/openapi/glClientIdentity/v1/cards",
	"body": "json",
	"fields": {"request": {}, "response": {"data[].cardNumber": "card"}},
}

kb_client_identity := {
	"vendor": "kb",
	"id": "kb.clientIdentity",
	"method": "GET",
	"path": "/v1/clients/me/identity",
	"body": "json",
	"fields": {"request": {}, "response": {
		"givenName": "identity",
		"surname": "identity",
		"birthNumber": "national_id",
		"dateOfBirth": "identity",
		"gender": "identity",
		"citizenship": "identity",
		"placeOfBirth": "identity",
		"politicallyExposedPerson": "pep",
		"identityDocument.type": "document",
		"identityDocument.number": "document",
		"identityDocument.issuingCountry": "document",
		"identityDocument.placeOfIssue": "document",
		"identityDocument.issueDate": "document",
		"identityDocument.expiryDate": "document",
		"permanentAddress.street": "address",
		"permanentAddress.descriptiveNumber": "address",
		"permanentAddress.orientationNumber": "address",
		"permanentAddress.postalCode": "address",
		"permanentAddress.municipality": "address",
		"permanentAddress.country": "address",
		"identifyingCompanyIco": "document",
	}},
}

banqware_tenant_urls := {
	"vendor": "banqware",
	"id": "banqware.tenantUrls",
	"method": "PUT",
	"path": "/management-resources/api/tenant/urls",
	"body": "json",
	"class": "tenant",
	"fields": {
		"request": {"redirectUrls[]": "metadata", "updateCallbackUrls[]": "metadata"},
		"response": {"redirectUrls[]": "metadata", "updateCallbackUrls[]": "metadata"},
	},
}

banqware_create_user := {
	"vendor": "banqware",
	"id": "banqware.createUser",
	"method": "POST",
	"path": "/user-resources/api/user",
	"body": "json",
	"fields": {
		"request": {"clientId": "metadata"},
		"response": {"userId": "metadata", "clientId": "metadata"},
	},
}

banqware_accounts := {
	"vendor": "banqware",
	"id": "banqware.accounts",
	"method": "GET",
	"path": "/account-info-resources/api/user/id/{userId}/accounts",
	"body": "json",
	"fields": {"request": {}, "response": {
		"data[].accountId": "metadata",
		"data[].consentId": "metadata",
		"data[].bankId": "metadata",
		"data[].iban": "account",
		"data[].currency": "account",
		"data[].name": "account",
		"data[].type": "account",
		"data[].ownerName": "identity",
		"data[].balance.amount": "account",
		"data[].balance.currency": "account",
	}},
}

biometric_create_session := {
	"vendor": "biometric",
	"id": "biometric.createSession",
	"method": "POST",
	"path": "/api/v1/flows/session/create/",
	"body": "json",
	"fields": {
		"request": {
			"metadata.face2face.photo1": "biometric",
			"metadata.edocument.iin.value": "national_id",
			"metadata.edocument.iin.changeable": "metadata",
			"metadata.edocument.phone.value": "contact",
			"metadata.edocument.phone.changeable": "metadata",
			"metadata.edocument.skip_input": "metadata",
			"metadata.general.interchangeable_tech": "metadata",
		},
		"response": {"session_id": "metadata", "technologies[]": "metadata"},
	},
}

# Everything the app puts in a session-creation body.
create_session_body := [
	"metadata.face2face.photo1",
	"metadata.edocument.iin.value",
	"metadata.edocument.iin.changeable",
	"metadata.edocument.phone.value",
	"metadata.edocument.phone.changeable",
	"metadata.edocument.skip_input",
	"metadata.general.interchangeable_tech",
]

biometric_session_result := {
	"vendor": "biometric",
	"id": "biometric.sessionResult",
	"method": "GET",
	"path": "/api/v1/flows/session/result/",
	"body": "json",
	"fields": {"request": {}, "response": {
		"id": "metadata",
		"technologies[].name": "metadata",
		"technologies[].description": "metadata",
		"liveness_result.status": "biometric",
		"liveness_result.is_live": "biometric",
		"liveness_result.score": "biometric",
		"face2face_result.status": "biometric",
		"face2face_result.similarity": "biometric",
		"face2face_result.is_same_person": "biometric",
		"document_recognition_result.first_name": "identity",
		"document_recognition_result.last_name": "identity",
		"document_recognition_result.patronymic": "identity",
		"document_recognition_result.personal_number": "national_id",
		"document_recognition_result.date_of_birth": "identity",
		"document_recognition_result.gender": "identity",
		"document_recognition_result.place_of_birth": "identity",
		"document_recognition_result.nationality": "identity",
		"document_recognition_result.document_type": "document",
		"document_recognition_result.document_number": "document",
		"document_recognition_result.issue_date": "document",
		"document_recognition_result.expiry_date": "document",
		"document_recognition_result.authority": "document",
		"edocument_result.status": "metadata",
		"edocument_result.iin": "national_id",
		"edocument_result.phone": "contact",
		"edocument_result.first_name": "identity",
		"edocument_result.last_name": "identity",
		"edocument_result.patronymic": "identity",
		"edocument_result.personal_number": "national_id",
		"edocument_result.date_of_birth": "identity",
		"edocument_result.gender": "identity",
		"edocument_result.place_of_birth": "identity",
		"edocument_result.nationality": "identity",
		"edocument_result.document_type": "document",
		"edocument_result.document_number": "document",
		"edocument_result.issue_date": "document",
		"edocument_result.expiry_date": "document",
		"edocument_result.authority": "document",
	}},
}

# The liveness video: a binary body with no field map.
biometric_liveness_video := {
	"vendor": "biometric",
	"id": "biometric.livenessVideo",
	"method": "GET",
	"path": "/api/v1/liveness/video/download/",
	"body": "binary",
	"fields": {"request": {}, "response": {}},
}

finid_verify := {
	"vendor": "finid",
	"id": "finid.verify",
	"method": "POST",
	"path": "/api/v1/verifications",
	"body": "json",
	"fields": {
		"request": {"iin": "national_id", "phone": "contact", "photo": "biometric"},
		"response": {
			"id": "metadata",
			"status": "metadata",
			"createdAt": "metadata",
			"person.iin": "national_id",
			"person.surname": "identity",
			"person.name": "identity",
			"person.patronymic": "identity",
			"person.birthDate": "identity",
			"person.gender": "identity",
			"person.birthPlace": "identity",
			"person.nationality": "identity",
			"person.citizenship": "identity",
			"person.phone": "contact",
			"person.documentType": "document",
			"person.documentNumber": "document",
			"person.documentIssuer": "document",
			"person.documentIssueDate": "document",
			"person.documentExpiryDate": "document",
		},
	},
}

banqware_delete_consent := {
	"vendor": "banqware",
	"id": "banqware.deleteConsent",
	"method": "DELETE",
	"path": "/consent-resources/api/user/id/{userId}/consent/{consentId}",
	"body": "json",
	"fields": {"request": {}, "response": {}},
}

banqware_update_callback := {
	"vendor": "banqware",
	"id": "banqware.updateCallback",
	"method": "POST",
	"path": "/updates",
	"body": "json",
	"fields": {"request": {}, "response": {"updateId": "metadata", "status": "metadata"}},
}

kb_verify_identity := {
	"vendor": "kb",
	"id": "kb.verifyIdentity",
	"method": "POST",
	"path": "/v1/clients/me/identity/verification",
	"body": "json",
	"fields": {
		"request": {
			"givenName": "identity",
			"surname": "identity",
			"birthNumber": "national_id",
			"dateOfBirth": "identity",
			"citizenship": "identity",
			"nationality": "identity",
			"placeOfBirth": "identity",
			"identityDocument.type": "document",
			"identityDocument.number": "document",
			"identityDocument.issuingCountry": "document",
			"identityDocument.expiryDate": "document",
			"permanentAddress.street": "address",
			"permanentAddress.descriptiveNumber": "address",
			"permanentAddress.orientationNumber": "address",
			"permanentAddress.postalCode": "address",
			"permanentAddress.municipality": "address",
			"permanentAddress.country": "address",
		},
		"response": {
			"verified": "verification",
			"matches.givenName": "verification",
			"matches.surname": "verification",
			"matches.birthNumber": "verification",
			"matches.dateOfBirth": "verification",
			"matches.citizenship": "verification",
			"matches.nationality": "verification",
			"matches.placeOfBirth": "verification",
			"matches.identityDocument.type": "verification",
			"matches.identityDocument.number": "verification",
			"matches.identityDocument.issuingCountry": "verification",
			"matches.identityDocument.expiryDate": "verification",
			"matches.permanentAddress.street": "verification",
			"matches.permanentAddress.descriptiveNumber": "verification",
			"matches.permanentAddress.orientationNumber": "verification",
			"matches.permanentAddress.postalCode": "verification",
			"matches.permanentAddress.municipality": "verification",
			"matches.permanentAddress.country": "verification",
		},
	},
}

# What an end user typed into a registration form, as the app sends it to be verified.
typed_in := ["givenName", "surname", "birthNumber", "dateOfBirth", "permanentAddress.street", "permanentAddress.postalCode"]
