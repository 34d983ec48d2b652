package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

const (
	biometricCreatePath = "/api/v1/flows/session/create/"
	biometricResultPath = "/api/v1/flows/session/result/"
	biometricVideoPath  = "/api/v1/liveness/video/download/"
	// biometricSessionLife is the vendor's limit on a flow session.
	biometricSessionLife = 10 * time.Minute
)

// biometric stands in for Biometric.Vision Flow Remote. The sandbox has no end user to walk
// through the flow, so a session counts as finished the moment it is created: its result and
// video are available at once, for as long as the session lives.
//
// The technologies of a session follow its metadata, as flows configured in the vendor's
// cabinet would: always LDHP (liveness); ED when edocument metadata is given, F2F when a
// photo is given; DR (document recognition) when neither, so that every session yields the
// person's data from somewhere.
type biometric struct {
	apiKey *rotatingKey
	now    func() time.Time

	mu       sync.Mutex
	sessions map[string]*flowSession
}

type flowSession struct {
	id           string
	created      time.Time
	technologies []string
	iin, phone   string // e-document metadata as given, empty when not
}

// flowMetadata is the documented optional metadata of a session; pointers tell a field that
// is absent from one that is empty.
type flowMetadata struct {
	Face2Face *struct {
		Photo1 *string `json:"photo1"`
	} `json:"face2face"`
	EDocument *struct {
		IIN       *edocumentField `json:"iin"`
		Phone     *edocumentField `json:"phone"`
		SkipInput *bool           `json:"skip_input"`
	} `json:"edocument"`
	General *struct {
		InterchangeableTech []string `json:"interchangeable_tech"`
	} `json:"general"`
}

type edocumentField struct {
	Value      *string `json:"value"`
	Changeable *bool   `json:"changeable"`
}

type flowTechnology struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

type flowResult struct {
	ID                  string                     `json:"id"`
	Technologies        []flowTechnology           `json:"technologies"`
	Liveness            *livenessResult            `json:"liveness_result,omitempty"`
	DocumentRecognition *documentRecognitionResult `json:"document_recognition_result,omitempty"`
	Face2Face           *face2faceResult           `json:"face2face_result,omitempty"`
	EDocument           *edocumentResult           `json:"edocument_result,omitempty"`
}

type livenessResult struct {
	Status string  `json:"status"`
	IsLive bool    `json:"is_live"`
	Score  float64 `json:"score"`
}

type face2faceResult struct {
	Status       string  `json:"status"`
	Similarity   float64 `json:"similarity"`
	IsSamePerson bool    `json:"is_same_person"`
}

type documentRecognitionResult struct {
	FirstName      string `json:"first_name"`
	LastName       string `json:"last_name"`
	Patronymic     string `json:"patronymic"`
	PersonalNumber string `json:"personal_number"`
	DateOfBirth    string `json:"date_of_birth"`
	Gender         string `json:"gender"`
	PlaceOfBirth   string `json:"place_of_birth"`
	Nationality    string `json:"nationality"`
	DocumentType   string `json:"document_type"`
	DocumentNumber string `json:"document_number"`
	IssueDate      string `json:"issue_date"`
	ExpiryDate     string `json:"expiry_date"`
	Authority      string `json:"authority"`
}

type edocumentResult struct {
	Status string `json:"status"`
	IIN    string `json:"iin"`
	Phone  string `json:"phone"`
	documentRecognitionResult
}

// biometricDateLayout is how Kazakh documents, and this vendor, write dates.
const biometricDateLayout = "02.01.2006"

func newBiometric(cfg Config) *biometric {
	return &biometric{
		apiKey:   newRotatingKey(cfg.Credentials.BiometricFlowAPIKey),
		now:      cfg.now,
		sessions: make(map[string]*flowSession),
	}
}

// ServeHTTP refuses with {"detail": "..."} bodies (an assumption: the documentation shows no
// error body). No answer ever contains the flow API key, whatever the request did with it.
func (h *biometric) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case biometricCreatePath:
		h.create(w, r)
	case biometricResultPath:
		if s, ok := h.session(w, r); ok {
			writeJSON(w, http.StatusOK, h.result(s))
		}
	case biometricVideoPath:
		if s, ok := h.session(w, r); ok {
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", s.id+".mp4"))
			writeBody(w, http.StatusOK, "video/mp4", livenessVideo(s.id))
		}
	default:
		biometricError(w, http.StatusNotFound, "Not found.")
	}
}

func (h *biometric) create(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		biometricMethodNotAllowed(w, r, http.MethodPost)
		return
	}
	// A key in the URL ends up in access logs on every hop; the vendor takes it in the body.
	if q := r.URL.Query(); q.Has("api_key") || q.Has("flow_api_key") {
		biometricError(w, http.StatusBadRequest, "The flow API key belongs in the JSON body as api_key, not in the query string.")
		return
	}
	var req struct {
		APIKey   *string         `json:"api_key"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		biometricError(w, http.StatusBadRequest, jsonProblem("", err))
		return
	}
	if req.APIKey == nil || *req.APIKey == "" {
		biometricError(w, http.StatusUnauthorized, "api_key is required in the JSON body.")
		return
	}
	if !secretEqual(*req.APIKey, h.apiKey.get()) {
		biometricError(w, http.StatusUnauthorized, "Invalid flow API key.")
		return
	}
	s, err := h.newSession(req.Metadata)
	if err != nil {
		biometricError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session_id": s.id, "technologies": s.technologies})
}

func (h *biometric) newSession(rawMetadata json.RawMessage) (*flowSession, error) {
	var m flowMetadata
	if len(rawMetadata) > 0 && string(rawMetadata) != "null" {
		if err := json.Unmarshal(rawMetadata, &m); err != nil {
			return nil, errors.New(jsonProblem("metadata.", err))
		}
	}
	if err := validateFlowMetadata(m); err != nil {
		return nil, err
	}
	s := &flowSession{id: uuid.NewString(), created: h.now(), technologies: []string{"LDHP"}}
	if m.EDocument != nil {
		s.technologies = append(s.technologies, "ED")
		if f := m.EDocument.IIN; f != nil && f.Value != nil {
			s.iin = *f.Value
		}
		if f := m.EDocument.Phone; f != nil && f.Value != nil {
			s.phone = *f.Value
		}
	}
	if m.Face2Face != nil && m.Face2Face.Photo1 != nil {
		s.technologies = append(s.technologies, "F2F")
	}
	if len(s.technologies) == 1 {
		s.technologies = append(s.technologies, "DR")
	}
	h.mu.Lock()
	h.sessions[s.id] = s
	h.mu.Unlock()
	return s, nil
}

func validateFlowMetadata(m flowMetadata) error {
	if f := m.Face2Face; f != nil && f.Photo1 != nil {
		if *f.Photo1 == "" {
			return errors.New("metadata.face2face.photo1: the photo is empty")
		}
		if _, err := base64.StdEncoding.DecodeString(*f.Photo1); err != nil {
			return errors.New("metadata.face2face.photo1: the photo is not valid base64")
		}
	}
	if e := m.EDocument; e != nil {
		if e.IIN != nil && e.IIN.Value != nil && !allDigits(*e.IIN.Value, 12) {
			return errors.New("metadata.edocument.iin.value: an IIN has exactly 12 digits")
		}
		if e.Phone != nil && e.Phone.Value != nil && !internationalPhone(*e.Phone.Value) {
			return errors.New("metadata.edocument.phone.value: a phone number is + and 7 to 15 digits")
		}
		// The documented rule: the input step is skipped only when both values
		// are given and neither may be changed by the user.
		if e.SkipInput != nil && *e.SkipInput && (!fixed(e.IIN) || !fixed(e.Phone)) {
			return errors.New("metadata.edocument.skip_input: true needs iin and phone each with a value and changeable false")
		}
	}
	if g := m.General; g != nil {
		for i, code := range g.InterchangeableTech {
			if _, ok := technology(code); !ok {
				// The value is not quoted: nothing a client sent is echoed, in case it was the key.
				return fmt.Errorf("metadata.general.interchangeable_tech[%d]: unknown technology code; known are LD, LDHP, F2F, ED, DR", i)
			}
		}
	}
	return nil
}

// fixed reports whether an e-document field carries a value the user may not change.
func fixed(f *edocumentField) bool {
	return f != nil && f.Value != nil && *f.Value != "" && f.Changeable != nil && !*f.Changeable
}

// session authenticates a result or video download and finds its session. The key is
// checked before the session so that an outsider cannot probe which sessions exist.
func (h *biometric) session(w http.ResponseWriter, r *http.Request) (*flowSession, bool) {
	if r.Method != http.MethodGet {
		biometricMethodNotAllowed(w, r, http.MethodGet)
		return nil, false
	}
	q := r.URL.Query()
	key := q.Get("flow_api_key")
	if key == "" {
		biometricError(w, http.StatusUnauthorized, "flow_api_key is required in the query string.")
		return nil, false
	}
	if !secretEqual(key, h.apiKey.get()) {
		biometricError(w, http.StatusUnauthorized, "Invalid flow API key.")
		return nil, false
	}
	id := q.Get("session_id")
	if id == "" {
		biometricError(w, http.StatusBadRequest, "session_id is required in the query string.")
		return nil, false
	}
	h.mu.Lock()
	s := h.sessions[id]
	h.mu.Unlock()
	if s == nil {
		biometricError(w, http.StatusNotFound, "Session not found.")
		return nil, false
	}
	if h.now().Sub(s.created) > biometricSessionLife {
		biometricError(w, http.StatusGone, "Session expired: a flow session lives at most 10 minutes.")
		return nil, false
	}
	return s, true
}

func (h *biometric) result(s *flowSession) flowResult {
	res := flowResult{ID: s.id}
	for _, code := range s.technologies {
		t, _ := technology(code)
		res.Technologies = append(res.Technologies, t)
		switch code {
		case "LD", "LDHP":
			res.Liveness = &livenessResult{Status: "success", IsLive: true, Score: 0.987}
		case "F2F":
			res.Face2Face = &face2faceResult{Status: "success", Similarity: 0.962, IsSamePerson: true}
		case "DR":
			doc := documentFields(kazakhWoman())
			res.DocumentRecognition = &doc
		case "ED":
			p := kazakhWoman()
			if s.iin != "" {
				p = kazakhPersonFor(s.iin)
			}
			phone := p.Phone
			if s.phone != "" {
				phone = s.phone
			}
			res.EDocument = &edocumentResult{Status: "success", IIN: p.IIN, Phone: phone, documentRecognitionResult: documentFields(p)}
		}
	}
	return res
}

func documentFields(p kazakhPerson) documentRecognitionResult {
	return documentRecognitionResult{
		FirstName:      p.FirstName,
		LastName:       p.LastName,
		Patronymic:     p.Patronymic,
		PersonalNumber: p.IIN,
		DateOfBirth:    p.Birth.Format(biometricDateLayout),
		Gender:         p.gender(),
		PlaceOfBirth:   p.BirthPlace,
		Nationality:    p.Nationality,
		DocumentType:   "ID_CARD",
		DocumentNumber: p.DocumentNumber,
		IssueDate:      p.DocumentIssued.Format(biometricDateLayout),
		ExpiryDate:     p.DocumentValid.Format(biometricDateLayout),
		Authority:      p.Authority,
	}
}

// technology describes a technology code as the result's technologies list does.
func technology(code string) (flowTechnology, bool) {
	switch code {
	case "LD":
		return flowTechnology{"Liveness", "Checks that a live person is in front of the camera"}, true
	case "LDHP":
		return flowTechnology{"Liveness HP", "Liveness check with higher precision"}, true
	case "F2F":
		return flowTechnology{"Face2Face", "Compares the face with the given photo"}, true
	case "ED":
		return flowTechnology{"E-Document", "Reads the digital identity document after an SMS code"}, true
	case "DR":
		return flowTechnology{"Document Recognition", "Reads the identity document from its image"}, true
	}
	return flowTechnology{}, false
}

func internationalPhone(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	return ok && len(digits) >= 7 && len(digits) <= 15 && allDigits(digits, len(digits))
}

func biometricError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

func biometricMethodNotAllowed(w http.ResponseWriter, r *http.Request, allowed string) {
	w.Header().Set("Allow", allowed)
	biometricError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method))
}
