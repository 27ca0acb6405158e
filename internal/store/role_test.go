package store

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"
)

var errProbed = errors.New("probed")

// An operation takes the writer role in its state query rather than in a statement of its
// own: every statement after it runs as the writer, which may not update a balance directly.
func TestOperationRunsAsTheWriterRole(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if s.writerRole == "" {
		t.Fatal("the test database has no carbonledger_writer role to write as")
	}
	c := addContract(t, s, contractDoc("ROLE-1", nil))
	err := s.writeAs(ctx, "probe", false, func(tx *sqlx.Tx) error {
		if _, err := operationState(ctx, tx, c.Code, "probe-key", "", s.writerRole); err != nil {
			return err
		}
		var who string
		if err := tx.GetContext(ctx, &who, `SELECT current_user`); err != nil {
			return err
		}
		if who != s.writerRole {
			t.Errorf("after the state query the transaction runs as %s, want %s", who, s.writerRole)
		}
		_, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = balance + 1`)
		if got := pgCode(err); got != "42501" {
			t.Errorf("a direct balance update as the writer: got %v, want SQLSTATE 42501", err)
		}
		return errProbed // roll back
	})
	if !errors.Is(err, errProbed) {
		t.Fatal(err)
	}
}
