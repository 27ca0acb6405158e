package pgdev

import (
	"context"
	"io"
	"os"
)

// Resolve returns the database URL to use: DATABASE_URL when set, else the private cluster's
// database dbname (started, and created, on demand).
func Resolve(ctx context.Context, log io.Writer, dbname string) (string, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, nil
	}
	c, err := Default(log)
	if err != nil {
		return "", err
	}
	return c.URL(ctx, dbname)
}
