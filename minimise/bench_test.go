package minimise

import (
	"testing"
)

// vendorResponse2KB is an Air Bank personalData answer padded with the kind of
// fields vendors add without notice, about 2 KB.
const vendorResponse2KB = `{"gender":"F","names":"Tereza Anna","surname":"Horáková","birthNumber":"9157144238","birthDate":"1991-07-14","birthPlace":"Olomouc","citizenship":"CZ",
"permanentAddress":{"country":"CZ","municipality":"Olomouc","street":"Wellnerova","locality":"Nová Ulice","buildingNumber":"1322/3","postalCode":"77900"},
"primaryPersonalDocument":{"type":"ID_CARD","number":"217456893","validTo":1930435200000,"country":"CZ"},
"politicallyExposedPerson":false,"physicallyIdentified":true,
"contactAddress":{"country":"CZ","municipality":"Praha","street":"Evropská","locality":"Vokovice","buildingNumber":"2690/17","postalCode":"16000"},
"emails":[{"address":"tereza.horakova@example.cz","primary":true},{"address":"t.h@example.com","primary":false}],
"phones":[{"number":"+420777123456","type":"MOBILE"},{"number":"+420585123456","type":"HOME"}],
"employment":{"employer":"Příklad s.r.o.","position":"účetní","since":"2016-03-01","income":{"amount":"42000","currency":"CZK"}},
"marketingConsents":[{"channel":"EMAIL","given":false},{"channel":"SMS","given":false},{"channel":"POST","given":true}],
"segments":["RETAIL","DIGITAL","SAVINGS"],"customerSince":"2014-05-20","riskProfile":{"score":17,"class":"LOW","reviewedAt":"2026-09-30"},
"previousNames":[{"surname":"Nováková","until":"2018-06-16"}],"taxResidence":[{"country":"CZ","tin":"9157144238"}],
"lastLogin":"2026-11-20T18:44:03Z","preferredLanguage":"cs","channels":{"web":true,"mobile":true,"branch":false},
"documents":[{"type":"PASSPORT","number":"45123987","validTo":1893456000000,"country":"CZ"},{"type":"DRIVE","number":"EK123456","validTo":1861920000000,"country":"CZ"}],
"accounts":[{"iban":"CZ0830300000001235335010","currency":"CZK","type":"CURRENT"},{"iban":"CZ1630300000002287139040","currency":"EUR","type":"SAVINGS"}],
"branch":{"id":"OL-01","name":"Olomouc Horní náměstí","manager":"Ing. Petr Svoboda"},
"notes":"Klientka preferuje komunikaci e-mailem; ověřena osobně na pobočce Olomouc dne 20. 5. 2014."}`

var kycFields = map[string]string{
	"gender": "keep", "names": "keep", "surname": "keep", "birthNumber": "mask", "birthDate": "keep", "birthPlace": "keep",
	"citizenship": "keep", "permanentAddress.country": "keep", "permanentAddress.municipality": "keep",
	"permanentAddress.street": "keep", "permanentAddress.locality": "keep", "permanentAddress.buildingNumber": "keep",
	"permanentAddress.postalCode": "keep", "primaryPersonalDocument.type": "keep", "primaryPersonalDocument.number": "keep",
	"primaryPersonalDocument.validTo": "keep", "primaryPersonalDocument.country": "keep",
	"politicallyExposedPerson": "drop", "physicallyIdentified": "keep",
}

// BenchmarkMinimize2KB applies the kyc-onboarding decision to a 2 KB response.
func BenchmarkMinimize2KB(b *testing.B) {
	body := []byte(vendorResponse2KB)
	if _, err := New(kycFields, "drop", nil, minimizeNow).Minimise(body); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		New(kycFields, "drop", nil, minimizeNow).Minimise(body)
	}
}
