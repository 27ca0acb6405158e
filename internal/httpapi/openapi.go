package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/carbonledger/carbonledger/internal/store"
)

// OpenAPI is the API's contract (OpenAPI 3.1): every route of Routes, with its parameters,
// bodies, answers and their schemas. A test calls every operation in it and validates each
// answer against its schema.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ store.Token) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(OpenAPI)
	return nil
}
