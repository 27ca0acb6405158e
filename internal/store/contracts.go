package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/carbonledger/carbonledger/ledger"
)

// Result is the outcome of an operation: the entry written, or the original one when the
// request was a replay of an idempotency key.
type Result struct {
	Entry  ledger.Entry `json:"entry"`
	Replay bool         `json:"replay"`
}

// AddContract records a contract: its book, its accounts, its terms, its schedule and the
// sign entry, in one transaction. Adding the same contract again under the same key returns
// the original sign entry; a different contract under an existing code is a conflict.
func (s *Store) AddContract(ctx context.Context, c ledger.Contract, key string) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	if key == "" {
		key = "contract:" + c.Code + ":sign"
	}
	terms, err := json.Marshal(c)
	if err != nil {
		return Result{}, err
	}
	request := ledger.RequestDigest("contract add", json.RawMessage(terms))
	var res Result
	err = s.write(ctx, "add contract "+c.Code, func(tx *sqlx.Tx) (err error) {
		res, err = s.addContractTx(ctx, tx, c, key, terms, request)
		return err
	})
	return res, err
}

// addContractTx is AddContract's work inside tx, for a contract c that validated, under key.
func (s *Store) addContractTx(ctx context.Context, tx *sqlx.Tx, c ledger.Contract, key string, terms, request []byte) (Result, error) {
	var res Result
	err := func() error {
		prior, found, err := replayTx(ctx, tx, key, request)
		if err != nil || found {
			res = Result{Entry: prior, Replay: found}
			if err != nil && errors.Is(err, ledger.ErrConflict) {
				// The key was used before: by this contract's signing (same code, other
				// terms), or by some other request entirely.
				var book string
				if qerr := tx.GetContext(ctx, &book, `SELECT b.code FROM entries e JOIN books b ON b.id = e.book_id
					WHERE e.idempotency_key = $1 AND e.kind = 'sign'`, key); qerr == nil && book == c.Code {
					return &ledger.FieldError{Field: "code", Value: c.Code, Kind: ledger.ErrConflict,
						Rule: "already exists with different terms; a contract's terms never change after signing (amend it, or choose a new code)"}
				}
			}
			return err
		}
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM contracts WHERE code = $1)`, c.Code); err != nil {
			return err
		}
		if exists {
			return &ledger.FieldError{Field: "code", Value: c.Code, Kind: ledger.ErrConflict, Rule: "is already the code of another contract; contract codes are unique"}
		}
		contractID, err := insertContract(ctx, tx, c, terms)
		if err != nil {
			return err
		}
		e := ledger.BuildSign(&c, key)
		e.ID, e.Request = ledger.NewID(), request
		if err := e.Validate(); err != nil {
			return err
		}
		b, err := lockBook(ctx, tx, c.Code)
		if err != nil {
			return err
		}
		ba, err := bookAccountsTx(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		if err := s.insertEntry(ctx, tx, b, ba, &e); err != nil {
			return err
		}
		if err := insertSchedule(ctx, tx, contractID, 1, c.ScheduleGiven, e.ID, c.Schedule); err != nil {
			return err
		}
		res = Result{Entry: e}
		return nil
	}()
	return res, err
}

// insertContract creates a contract's book, accounts and terms row, and returns its id.
func insertContract(ctx context.Context, tx *sqlx.Tx, c ledger.Contract, terms []byte) (int64, error) {
	var bookID int64
	if err := tx.GetContext(ctx, &bookID, `INSERT INTO books (code) VALUES ($1) RETURNING id`, c.Code); err != nil {
		return 0, err
	}
	for _, a := range c.Accounts().List(&c) {
		if err := createAccountTx(ctx, tx, a); err != nil {
			return 0, err
		}
	}
	var price any
	if c.PricePerTonne != nil {
		price = c.PricePerTonne.String()
	}
	var dur any
	if c.Durability.Years != 0 {
		dur = c.Durability.Years
	}
	var contractID int64
	err := tx.GetContext(ctx, &contractID, `
		INSERT INTO contracts (code, book_id, buyer, supplier, project, method, country, region, registry, standard,
		    durability_years, durability_at_least, term_start, term_end, signed_on, tonnes, price_per_tonne, currency,
		    delivery_mode, over_delivery_tolerance, notes, terms, registry_projects, registry_accounts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
		RETURNING id`,
		c.Code, bookID, c.Buyer, c.Supplier, c.Project, string(c.Method), c.Country, c.Region, c.Registry, c.Standard,
		dur, c.Durability.AtLeast, c.TermStart, c.TermEnd, c.SignedOn, c.Tonnes.String(), price, c.Currency,
		string(c.DeliveryMode), c.OverDeliveryTolerance.String(), c.Notes, string(terms), pq.StringArray(nonNilList(c.RegistryProjects)), pq.StringArray(nonNilList(c.RegistryAccounts)))
	return contractID, err
}

func insertSchedule(ctx context.Context, tx *sqlx.Tx, contractID int64, version int, explicit bool, entryID string, lines []ledger.ScheduleLine) error {
	for _, l := range lines {
		var vintage, price, due any
		if l.Vintage != 0 {
			vintage = l.Vintage
		}
		if l.PricePerTonne != nil {
			price = l.PricePerTonne.String()
		}
		if !l.DueOn.IsZero() {
			due = l.DueOn
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO schedule_lines (contract_id, version, explicit, entry_id, year, tonnes, vintage, price_per_tonne, due_on)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			contractID, version, explicit, entryID, l.Year, l.Tonnes.String(), vintage, price, due); err != nil {
			return err
		}
	}
	return nil
}

// contractRow is a contracts row as scanned.
type contractRow struct {
	ID                    int64          `db:"id"`
	BookID                int64          `db:"book_id"`
	Code                  string         `db:"code"`
	Buyer                 string         `db:"buyer"`
	Supplier              string         `db:"supplier"`
	Project               string         `db:"project"`
	Method                string         `db:"method"`
	Country               string         `db:"country"`
	Region                string         `db:"region"`
	Registry              string         `db:"registry"`
	Standard              string         `db:"standard"`
	DurabilityYears       sql.NullInt64  `db:"durability_years"`
	DurabilityAtLeast     bool           `db:"durability_at_least"`
	TermStart             time.Time      `db:"term_start"`
	TermEnd               time.Time      `db:"term_end"`
	SignedOn              time.Time      `db:"signed_on"`
	Tonnes                ledger.Tonnes  `db:"tonnes"`
	PricePerTonne         sql.NullString `db:"price_per_tonne"`
	Currency              string         `db:"currency"`
	DeliveryMode          string         `db:"delivery_mode"`
	OverDeliveryTolerance ledger.Tonnes  `db:"over_delivery_tolerance"`
	Notes                 string         `db:"notes"`
	RegistryProjects      pq.StringArray `db:"registry_projects"`
	RegistryAccounts      pq.StringArray `db:"registry_accounts"`
}

// nonNilList is s, or an empty list for nil (a text[] NOT NULL column's empty value).
func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const contractCols = `id, book_id, code, buyer, supplier, project, method, country, region, registry, standard,
	durability_years, durability_at_least, term_start, term_end, signed_on, tonnes, price_per_tonne::text AS price_per_tonne,
	currency, delivery_mode, over_delivery_tolerance, notes, registry_projects, registry_accounts`

func (r contractRow) contract() ledger.Contract {
	c := ledger.Contract{Code: r.Code, Buyer: r.Buyer, Supplier: r.Supplier, Project: r.Project, Method: ledger.Method(r.Method),
		Country: r.Country, Region: r.Region, Registry: r.Registry, Standard: r.Standard,
		Durability: ledger.Durability{Years: int(r.DurabilityYears.Int64), AtLeast: r.DurabilityAtLeast},
		TermStart:  r.TermStart.UTC(), TermEnd: r.TermEnd.UTC(), SignedOn: r.SignedOn.UTC(), Tonnes: r.Tonnes,
		Currency: r.Currency, DeliveryMode: ledger.DeliveryMode(r.DeliveryMode), OverDeliveryTolerance: r.OverDeliveryTolerance, Notes: r.Notes}
	if len(r.RegistryProjects) > 0 {
		c.RegistryProjects = []string(r.RegistryProjects)
	}
	if len(r.RegistryAccounts) > 0 {
		c.RegistryAccounts = []string(r.RegistryAccounts)
	}
	if r.PricePerTonne.Valid {
		p := decimal.RequireFromString(r.PricePerTonne.String)
		c.PricePerTonne = &p
	}
	return c
}

// contractState loads a contract, its schedule in force and its position (contract_state).
func contractState(ctx context.Context, q sqlx.QueryerContext, code string) (ledger.ContractState, error) {
	var raw []byte
	err := sqlx.GetContext(ctx, q, &raw, `SELECT contract_state(book_id) FROM contracts WHERE code = $1`, code)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.ContractState{}, unknownContract(code)
	}
	if err != nil {
		return ledger.ContractState{}, err
	}
	return decodeContractState(raw)
}

func decodeContractState(raw []byte) (ledger.ContractState, error) {
	var cur opState
	if err := json.Unmarshal(raw, &cur); err != nil {
		return ledger.ContractState{}, fmt.Errorf("read a contract's state: %w", err)
	}
	st, _, _, err := cur.state()
	return st, err
}

// Contract returns a contract with its schedule and position.
func (s *Store) Contract(ctx context.Context, code string) (ledger.ContractState, error) {
	var st ledger.ContractState
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		var err error
		st, err = contractState(ctx, tx, code)
		return err
	})
	return st, err
}

// Contracts returns every contract, ordered by code.
func (s *Store) Contracts(ctx context.Context) ([]ledger.ContractState, error) {
	var out []ledger.ContractState
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		// One query, whatever the number of contracts.
		var raws [][]byte
		if err := tx.SelectContext(ctx, &raws, `SELECT contract_state(book_id) FROM contracts ORDER BY code`); err != nil {
			return err
		}
		for _, raw := range raws {
			st, err := decodeContractState(raw)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// opSpec is one operation under a contract as the store runs it, whichever front end asked
// for it: the book it writes to, its key and request digest, how it builds the entry from the
// contract's state, and what it writes after the entry (serial bookkeeping, a schedule). A
// single command runs it through operate, an import through an Importer.
type opSpec struct {
	op, code, key string
	request       []byte
	build         func(tx *sqlx.Tx, st ledger.ContractState, row contractRow) (ledger.Entry, error)
	after         func(tx *sqlx.Tx, st ledger.ContractState, row contractRow, e ledger.Entry) error
	// direct marks an operation whose build or after reads or writes more than the entry
	// (serial blocks, a schedule, the reverted entry), or whose effect on the contract's
	// state an import does not follow in memory (a termination, a reversal): an import
	// writes what it holds before it and reads the contract's state again after it.
	direct bool
}

// operate runs one operation under a contract: in one transaction it reads everything the
// operation needs in one call (operation_state: the book's lock, the key's replay, the
// contract, its schedule, position and accounts, and the clock), lets build construct the
// entry, writes it in one statement, and runs after (serial bookkeeping) with the written
// entry. A delivery without serials is four round trips: begin, state (the API's token checked
// with it), write, commit.
func (s *Store) operate(ctx context.Context, sp opSpec) (Result, error) {
	key := sp.key
	if key == "" {
		key = "auto:" + ledger.NewID()
	}
	var res Result
	err := s.writeAs(ctx, sp.op, false, func(tx *sqlx.Tx) error {
		cur, err := operationState(ctx, tx, sp.code, key, tokenOf(ctx), s.writerRole, s.writeLimits()...)
		if err != nil {
			return err
		}
		if cur.Kept {
			return keyTaken(key)
		}
		if cur.Replay != nil {
			recorded, err := hex.DecodeString(cur.Replay.Request)
			if err != nil {
				return err
			}
			prior, found, err := replayOf(ctx, tx, key, cur.Replay.ID, recorded, sp.request)
			res = Result{Entry: prior, Replay: found}
			return err
		}
		if cur.Book == nil {
			return unknownContract(sp.code)
		}
		st, row, b, err := cur.state()
		if err != nil {
			return err
		}
		e, err := sp.build(tx, st, row)
		if err != nil {
			return err
		}
		e.ID, e.Key, e.Request = ledger.NewID(), key, sp.request
		if err := e.Validate(); err != nil {
			return err
		}
		if err := s.insertEntry(ctx, tx, b, cur.bookAccounts, &e); err != nil {
			return err
		}
		if sp.after != nil {
			if err := sp.after(tx, st, row, e); err != nil {
				return err
			}
		}
		res = Result{Entry: e}
		return nil
	})
	return res, s.busyContract(sp.op, sp.code, err)
}

// keyTaken refuses an idempotency key the API used for an answer that is not an entry.
func keyTaken(key string) error {
	return &ledger.FieldError{Field: "key", Value: key, Kind: ledger.ErrConflict,
		Rule: "was already used for a different request (an answer the API keeps); use a new key for a new request"}
}

func unknownContract(code string) error {
	return &ledger.FieldError{Field: "contract", Value: code, Rule: "does not exist (see `carbonledger contract list`)", Kind: ledger.ErrNotFound}
}

// opState is operation_state's answer.
type opState struct {
	Kept   bool `json:"kept"` // the API keeps another kind of answer under the key
	Replay *struct {
		ID      string `json:"id"`
		Request string `json:"request"`
	} `json:"replay"`
	Book *struct {
		ID       int64  `json:"id"`
		Code     string `json:"code"`
		HeadSeq  int64  `json:"head_seq"`
		HeadHash string `json:"head_hash"`
	} `json:"book"`
	Contract struct {
		ID                    int64         `json:"id"`
		BookID                int64         `json:"book_id"`
		Code                  string        `json:"code"`
		Buyer                 string        `json:"buyer"`
		Supplier              string        `json:"supplier"`
		Project               string        `json:"project"`
		Method                string        `json:"method"`
		Country               string        `json:"country"`
		Region                string        `json:"region"`
		Registry              string        `json:"registry"`
		Standard              string        `json:"standard"`
		DurabilityYears       *int64        `json:"durability_years"`
		DurabilityAtLeast     bool          `json:"durability_at_least"`
		TermStart             string        `json:"term_start"`
		TermEnd               string        `json:"term_end"`
		SignedOn              string        `json:"signed_on"`
		Tonnes                ledger.Tonnes `json:"tonnes"`
		PricePerTonne         *string       `json:"price_per_tonne"`
		Currency              string        `json:"currency"`
		DeliveryMode          string        `json:"delivery_mode"`
		OverDeliveryTolerance ledger.Tonnes `json:"over_delivery_tolerance"`
		Notes                 string        `json:"notes"`
		RegistryProjects      []string      `json:"registry_projects"`
		RegistryAccounts      []string      `json:"registry_accounts"`
	} `json:"contract"`
	Schedule []struct {
		Version  int           `json:"version"`
		Explicit bool          `json:"explicit"`
		Year     int           `json:"year"`
		Tonnes   ledger.Tonnes `json:"tonnes"`
		Vintage  *int          `json:"vintage"`
		Price    *string       `json:"price_per_tonne"`
		DueOn    *string       `json:"due_on"`
	} `json:"schedule"`
	Position []struct {
		AccountKind string        `json:"account_kind"`
		Kind        string        `json:"kind"`
		Amount      ledger.Tonnes `json:"amount"`
	} `json:"position"`
	Serialized ledger.Tonnes `json:"serialized"`
	Terminated *string       `json:"terminated"`
	bookAccounts
}

// operationState calls operation_state, and takes the writer role for the rest of the
// transaction in the same statement (operation_state itself runs as its owner). The
// settings (name, value) are set for the transaction first, in the same statement: the
// lock timeout then bounds operation_state's wait for the book's lock.
func operationState(ctx context.Context, tx *sqlx.Tx, code, key, token, role string, settings ...[2]string) (opState, error) {
	var raw []byte
	var cur opState
	args := []any{code, key}
	cols := ", operation_state($1, $2)"
	if token != "" { // a write under an API token checks in the same statement that it is still active
		args = append(args, pq.Array([]string{token}))
		cols += ", tokens_revoked($3)"
	}
	q, args := settingsFirst(args, role, settings)
	var set int
	var revoked pq.StringArray
	dest := []any{&set, &raw}
	if token != "" {
		dest = append(dest, &revoked)
	}
	if err := tx.QueryRowContext(ctx, q+cols, args...).Scan(dest...); err != nil {
		return cur, err
	}
	if err := json.Unmarshal(raw, &cur); err != nil {
		return cur, fmt.Errorf("read the operation's state: %w", err)
	}
	if len(revoked) > 0 {
		return cur, tokenRevoked(token)
	}
	return cur, nil
}

// settingsFirst starts a SELECT whose first column sets, for the transaction, each setting
// (name, value) and then the role (when not ""), with their values as parameters after args;
// the columns that follow, evaluated after it, run under them.
func settingsFirst(args []any, role string, settings [][2]string) (string, []any) {
	if role != "" {
		settings = append(slices.Clone(settings), [2]string{"role", role})
	}
	q := "SELECT "
	for _, kv := range settings {
		args = append(args, kv[0], kv[1])
		q += fmt.Sprintf("length(set_config($%d, $%d, true)) + ", len(args)-1, len(args))
	}
	return q + "0", args
}

// state converts the answer to the domain's contract state, the contract's row and its book.
func (cur opState) state() (st ledger.ContractState, row contractRow, b book, err error) {
	c := cur.Contract
	date := func(s string) time.Time {
		d, perr := time.Parse(time.DateOnly, s)
		if perr != nil && err == nil {
			err = fmt.Errorf("read the operation's state: %w", perr)
		}
		return d
	}
	row = contractRow{ID: c.ID, BookID: c.BookID, Code: c.Code, Buyer: c.Buyer, Supplier: c.Supplier, Project: c.Project,
		Method: c.Method, Country: c.Country, Region: c.Region, Registry: c.Registry, Standard: c.Standard,
		DurabilityAtLeast: c.DurabilityAtLeast, TermStart: date(c.TermStart), TermEnd: date(c.TermEnd),
		SignedOn: date(c.SignedOn), Tonnes: c.Tonnes, Currency: c.Currency, DeliveryMode: c.DeliveryMode,
		OverDeliveryTolerance: c.OverDeliveryTolerance, Notes: c.Notes, RegistryProjects: c.RegistryProjects, RegistryAccounts: c.RegistryAccounts}
	if c.DurabilityYears != nil {
		row.DurabilityYears = sql.NullInt64{Int64: *c.DurabilityYears, Valid: true}
	}
	if c.PricePerTonne != nil {
		row.PricePerTonne = sql.NullString{String: *c.PricePerTonne, Valid: true}
	}
	st.Contract = row.contract()
	for _, l := range cur.Schedule {
		sl := ledger.ScheduleLine{Year: l.Year, Tonnes: l.Tonnes}
		if l.Vintage != nil {
			sl.Vintage = *l.Vintage
		}
		if l.Price != nil {
			p, perr := decimal.NewFromString(*l.Price)
			if perr != nil {
				return st, row, b, fmt.Errorf("read the operation's state: %w", perr)
			}
			sl.PricePerTonne = &p
		}
		if l.DueOn != nil {
			sl.DueOn = date(*l.DueOn)
		}
		st.Schedule = append(st.Schedule, sl)
		st.ScheduleVersion, st.ScheduleExplicit = l.Version, l.Explicit
	}
	st.Contract.Schedule, st.Contract.ScheduleGiven = st.Schedule, st.ScheduleExplicit
	for _, f := range cur.Position {
		st.Position.Add(ledger.AccountKind(f.AccountKind), ledger.Kind(f.Kind), f.Amount)
	}
	st.Position.SerializedHolding = cur.Serialized
	if cur.Terminated != nil {
		st.Position.TerminatedOn = date(*cur.Terminated)
	}
	st.Entries = cur.Book.HeadSeq
	b = book{ID: cur.Book.ID, Code: cur.Book.Code, HeadSeq: cur.Book.HeadSeq}
	if b.HeadHash, err = hex.DecodeString(cur.Book.HeadHash); err != nil {
		return st, row, b, fmt.Errorf("read the operation's state: %w", err)
	}
	return st, row, b, err
}

// Submit runs any operation request: the one entry point a front end needs (the CLI's flags,
// an HTTP body) once ledger.ParseOperation has turned its input into a request.
func (s *Store) Submit(ctx context.Context, r ledger.Request) (Result, error) {
	if rv, ok := r.(ledger.RevertRequest); ok {
		return s.Revert(ctx, rv)
	}
	sp, err := specOf(ctx, r)
	if err != nil {
		return Result{}, err
	}
	return s.submitGrouped(ctx, sp)
}

// specOf is the opSpec of an operation under a contract (a revert's needs its entry found
// first: revertSpec).
func specOf(ctx context.Context, r ledger.Request) (opSpec, error) {
	switch r := r.(type) {
	case ledger.DeliverRequest:
		return deliverSpec(ctx, r), nil
	case ledger.RetireRequest:
		return retireSpec(ctx, r), nil
	case ledger.CancelRequest:
		return cancelSpec(ctx, r), nil
	case ledger.ReverseRequest:
		return reverseSpec(ctx, r), nil
	case ledger.AmendRequest:
		return amendSpec(ctx, r), nil
	}
	return opSpec{}, fmt.Errorf("no store operation for %s", r.Op())
}

// Deliver records a delivery.
func (s *Store) Deliver(ctx context.Context, r ledger.DeliverRequest) (Result, error) {
	return s.submitGrouped(ctx, deliverSpec(ctx, r))
}

func deliverSpec(ctx context.Context, r ledger.DeliverRequest) opSpec {
	return opSpec{op: "deliver", code: r.Contract, key: r.Key, request: ledger.RequestDigest("deliver", r), direct: r.Serials != nil,
		build: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow) (ledger.Entry, error) {
			if r.Serials != nil {
				blocks, err := serialBlocks(ctx, tx, row.Registry, *r.Serials, false)
				if err != nil {
					return ledger.Entry{}, err
				}
				if err := ledger.CheckSerialsFree(blocks, *r.Serials); err != nil {
					return ledger.Entry{}, err
				}
			}
			return ledger.BuildDeliver(&st.Contract, st.Schedule, st.Position, r)
		},
		after: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow, e ledger.Entry) error {
			if r.Serials == nil {
				return nil
			}
			state := ledger.SerialDelivered
			if st.Contract.DeliveryMode == ledger.DeliverRetireOnDelivery {
				state = ledger.SerialRetired // the credits were retired on delivery
			}
			return moveSerials(ctx, tx, row, *r.Serials, nil, state, e.ID)
		}}
}

// Retire records a retirement.
func (s *Store) Retire(ctx context.Context, r ledger.RetireRequest) (Result, error) {
	return s.submitGrouped(ctx, retireSpec(ctx, r))
}

func retireSpec(ctx context.Context, r ledger.RetireRequest) opSpec {
	var blk ledger.SerialBlock
	return opSpec{op: "retire", code: r.Contract, key: r.Key, request: ledger.RequestDigest("retire", r), direct: r.Serials != nil,
		build: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow) (ledger.Entry, error) {
			if r.Serials != nil {
				var err error
				if blk, err = findBlock(ctx, tx, row, *r.Serials, ledger.SerialDelivered); err != nil {
					return ledger.Entry{}, err
				}
				if err := ledger.CheckRetireAfterDelivery(blk, *r.Serials, r.Date); err != nil {
					return ledger.Entry{}, err
				}
				if r.Vintage == 0 {
					r.Vintage = blk.Vintage
				}
			}
			return ledger.BuildRetire(&st.Contract, st.Position, r)
		},
		after: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow, e ledger.Entry) error {
			if r.Serials == nil {
				return nil
			}
			return moveSerials(ctx, tx, row, *r.Serials, &blk, ledger.SerialRetired, e.ID)
		}}
}

// Cancel records a cancellation or a termination.
func (s *Store) Cancel(ctx context.Context, r ledger.CancelRequest) (Result, error) {
	return s.submitGrouped(ctx, cancelSpec(ctx, r))
}

func cancelSpec(ctx context.Context, r ledger.CancelRequest) opSpec {
	return opSpec{op: "cancel", code: r.Contract, key: r.Key, request: ledger.RequestDigest("cancel", r), direct: true,
		build: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow) (ledger.Entry, error) {
			return ledger.BuildCancel(&st.Contract, st.Position, r)
		}}
}

// Reverse records a carbon reversal.
func (s *Store) Reverse(ctx context.Context, r ledger.ReverseRequest) (Result, error) {
	return s.submitGrouped(ctx, reverseSpec(ctx, r))
}

func reverseSpec(ctx context.Context, r ledger.ReverseRequest) opSpec {
	var blk ledger.SerialBlock
	return opSpec{op: "reverse", code: r.Contract, key: r.Key, request: ledger.RequestDigest("reverse", r), direct: true,
		build: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow) (ledger.Entry, error) {
			if r.Serials != nil {
				var err error
				if blk, err = findBlock(ctx, tx, row, *r.Serials, ledger.SerialDelivered); err != nil {
					return ledger.Entry{}, err
				}
			}
			return ledger.BuildReverse(&st.Contract, st.Position, r)
		},
		after: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow, e ledger.Entry) error {
			if r.Serials == nil {
				return nil
			}
			return moveSerials(ctx, tx, row, *r.Serials, &blk, ledger.SerialReversed, e.ID)
		}}
}

// Amend records an amendment and the schedule it puts in force.
func (s *Store) Amend(ctx context.Context, r ledger.AmendRequest) (Result, error) {
	return s.submitGrouped(ctx, amendSpec(ctx, r))
}

func amendSpec(ctx context.Context, r ledger.AmendRequest) opSpec {
	var schedule []ledger.ScheduleLine
	var explicit bool
	return opSpec{op: "amend", code: r.Contract, key: r.Key, request: ledger.RequestDigest("amend", r), direct: true,
		build: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow) (ledger.Entry, error) {
			var e ledger.Entry
			var err error
			e, schedule, explicit, err = ledger.BuildAmend(&st.Contract, st.Schedule, st.ScheduleExplicit, st.Position, r)
			return e, err
		},
		after: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow, e ledger.Entry) error {
			return insertSchedule(ctx, tx, row.ID, st.ScheduleVersion+1, explicit, e.ID, schedule)
		}}
}

// Revert records the correction of a mistaken entry, undoing its serial bookkeeping too.
func (s *Store) Revert(ctx context.Context, r ledger.RevertRequest) (Result, error) {
	request := ledger.RequestDigest("revert", r)
	book, isContract, err := revertTarget(ctx, s.db, &r)
	if err != nil {
		return Result{}, mapErr(err)
	}
	sp := revertSpec(ctx, r, book, request)
	if isContract {
		return s.operate(ctx, sp)
	}
	if sp.key == "" {
		sp.key = "auto:" + ledger.NewID()
	}
	var res Result
	err = s.write(ctx, "revert", func(tx *sqlx.Tx) error {
		prior, found, err := replayTx(ctx, tx, sp.key, request)
		if err != nil || found {
			res = Result{Entry: prior, Replay: found}
			return err
		}
		b, err := lockBook(ctx, tx, book)
		if err != nil {
			return err
		}
		ba, err := bookAccountsTx(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		e, err := sp.build(tx, ledger.ContractState{}, contractRow{})
		if err != nil {
			return err
		}
		e.ID, e.Key, e.Request = ledger.NewID(), sp.key, request
		if err := s.insertEntry(ctx, tx, b, ba, &e); err != nil {
			return err
		}
		res = Result{Entry: e}
		return nil
	})
	return res, err
}

// revertTarget finds the book of the entry r reverts, and whether it is a contract's; an
// entry named by its idempotency key (key:KEY) is resolved to its id in r.
func revertTarget(ctx context.Context, q sqlx.QueryerContext, r *ledger.RevertRequest) (book string, isContract bool, err error) {
	var row struct {
		ID         string `db:"id"`
		Book       string `db:"code"`
		IsContract bool   `db:"is_contract"`
	}
	const sel = `SELECT e.id, b.code, EXISTS (SELECT 1 FROM contracts c WHERE c.book_id = b.id) AS is_contract
	               FROM entries e JOIN books b ON b.id = e.book_id `
	if key, ok := strings.CutPrefix(r.Entry, ledger.EntryKeyPrefix); ok {
		err = sqlx.GetContext(ctx, q, &row, sel+`WHERE e.idempotency_key = $1`, key)
	} else if uuidRE.MatchString(r.Entry) {
		err = sqlx.GetContext(ctx, q, &row, sel+`WHERE e.id = $1`, r.Entry)
	} else {
		return "", false, ledger.Invalid("entry", r.Entry, "is not an entry id (a UUID such as 0190c3a2-...) or key:KEY")
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, &ledger.FieldError{Field: "entry", Value: r.Entry, Rule: "does not exist", Kind: ledger.ErrNotFound}
	}
	if err != nil {
		return "", false, err
	}
	r.Entry = row.ID
	return row.Book, row.IsContract, nil
}

// revertSpec is the correction of the entry r.Entry (an id, resolved by revertTarget) in
// book; request is the digest of the request as it was asked.
func revertSpec(ctx context.Context, r ledger.RevertRequest, book string, request []byte) opSpec {
	return opSpec{op: "revert", code: book, key: r.Key, request: request, direct: true,
		build: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow) (ledger.Entry, error) {
			orig, err := entryTx(ctx, tx, r.Entry)
			if err != nil {
				return ledger.Entry{}, err
			}
			var by sql.NullString
			if err := tx.GetContext(ctx, &by, `SELECT id FROM entries WHERE reverts = $1`, r.Entry); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return ledger.Entry{}, err
			}
			if by.Valid {
				return ledger.Entry{}, &ledger.FieldError{Field: "entry", Value: r.Entry, Kind: ledger.ErrConflict, Rule: "was already reverted by entry " + by.String}
			}
			e, err := ledger.BuildRevert(orig, r)
			if err == nil && orig.Metadata["serials"] == "" {
				// a delivery with serials takes its blocks back with it; one without, none
				err = ledger.CheckRevertHolding(&st.Contract, st.Position, e)
			}
			e.RevertsKind = orig.Kind // read with the original just now; insertEntry need not ask again
			return e, err
		},
		after: func(tx *sqlx.Tx, st ledger.ContractState, row contractRow, e ledger.Entry) error {
			return revertSerials(ctx, tx, row, r.Entry, e.ID)
		}}
}

// serialBlock is a serial_blocks row.
type serialBlock struct {
	ID      int64     `db:"id"`
	First   int64     `db:"first"`
	Last    int64     `db:"last"`
	State   string    `db:"state"`
	Code    string    `db:"code"`
	Entry   string    `db:"entry_id"`
	Date    time.Time `db:"effective_on"`
	Vintage int       `db:"vintage"`
}

const qBlocks = `
SELECT s.id, lower(s.serials) AS first, upper(s.serials) - 1 AS last, s.state, c.code, s.entry_id,
       e.effective_on, coalesce(e.vintage, 0) AS vintage
  FROM serial_blocks s JOIN contracts c ON c.id = s.contract_id JOIN entries e ON e.id = s.entry_id
 WHERE s.registry = $1 AND s.prefix = $2 AND s.serials && int8range($3, $4, '[]')
 ORDER BY lower(s.serials)`

// serialBlocks reads the blocks of r's series that overlap r, locked when lock is set; the
// domain decides what may be done with them (ledger.CheckSerialsFree, FindSerialBlock).
func serialBlocks(ctx context.Context, tx *sqlx.Tx, registry string, r ledger.SerialRange, lock bool) ([]ledger.SerialBlock, error) {
	q := qBlocks
	if lock {
		q += ` FOR UPDATE OF s`
	}
	var rows []serialBlock
	if err := tx.SelectContext(ctx, &rows, q, registry, r.Prefix, r.First, r.Last); err != nil {
		return nil, err
	}
	out := make([]ledger.SerialBlock, len(rows))
	for i, b := range rows {
		out[i] = ledger.SerialBlock{First: b.First, Last: b.Last, Contract: b.Code, State: ledger.SerialState(b.State),
			Entry: b.Entry, Date: b.Date.UTC(), Vintage: b.Vintage}
	}
	return out, nil
}

// findBlock locks and returns the block of this contract, in state, that holds all of r.
func findBlock(ctx context.Context, tx *sqlx.Tx, row contractRow, r ledger.SerialRange, state ledger.SerialState) (ledger.SerialBlock, error) {
	blocks, err := serialBlocks(ctx, tx, row.Registry, r, true)
	if err != nil {
		return ledger.SerialBlock{}, err
	}
	return ledger.FindSerialBlock(blocks, row.Code, r, state)
}

// moveSerials records r's move out of block from (nil for a delivery: from nowhere) into
// state to ("" for a reverted delivery: out of the ledger): the block gives way to what
// remains of it, r becomes a block of its own, and the move is a serial event of the entry.
func moveSerials(ctx context.Context, tx *sqlx.Tx, row contractRow, r ledger.SerialRange, from *ledger.SerialBlock, to ledger.SerialState, entryID string) error {
	var fromV any
	if from != nil {
		fromV = string(from.State)
		if _, err := tx.ExecContext(ctx, `
			DELETE FROM serial_blocks WHERE registry = $1 AND prefix = $2 AND serials = int8range($3, $4, '[]')`,
			row.Registry, r.Prefix, from.First, from.Last); err != nil {
			return err
		}
		for _, rest := range from.Rest(r) {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO serial_blocks (registry, prefix, serials, contract_id, state, entry_id)
				VALUES ($1, $2, int8range($3, $4, '[]'), $5, $6, $7)`,
				row.Registry, r.Prefix, rest[0], rest[1], row.ID, string(from.State), from.Entry); err != nil {
				return err
			}
		}
	}
	var toV any
	if to != "" {
		toV = string(to)
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO serial_blocks (registry, prefix, serials, contract_id, state, entry_id)
			VALUES ($1, $2, int8range($3, $4, '[]'), $5, $6, $7)`,
			row.Registry, r.Prefix, r.First, r.Last, row.ID, toV, entryID); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO serial_events (entry_id, contract_id, registry, prefix, serials, label, from_state, to_state)
		VALUES ($1, $2, $3, $4, int8range($5, $6, '[]'), $7, $8, $9)`,
		entryID, row.ID, row.Registry, r.Prefix, r.First, r.Last, r.Label, fromV, toV)
	return err
}

func revertSerials(ctx context.Context, tx *sqlx.Tx, row contractRow, origID, entryID string) error {
	var evs []struct {
		Prefix string         `db:"prefix"`
		First  int64          `db:"first"`
		Last   int64          `db:"last"`
		Label  string         `db:"label"`
		From   sql.NullString `db:"from_state"`
		To     sql.NullString `db:"to_state"`
	}
	if err := tx.SelectContext(ctx, &evs, `
		SELECT prefix, lower(serials) AS first, upper(serials) - 1 AS last, label, from_state, to_state
		  FROM serial_events WHERE entry_id = $1 ORDER BY id DESC`, origID); err != nil {
		return err
	}
	for _, ev := range evs {
		r := ledger.SerialRange{Prefix: ev.Prefix, First: ev.First, Last: ev.Last, Label: ev.Label}
		var from *ledger.SerialBlock
		if ev.To.Valid {
			b, err := findBlock(ctx, tx, row, r, ledger.SerialState(ev.To.String))
			if err != nil {
				return err
			}
			from = &b
		}
		if err := moveSerials(ctx, tx, row, r, from, ledger.SerialState(ev.From.String), entryID); err != nil {
			return err
		}
	}
	return nil
}

// SerialBlock is the state of a range of serials, for display and reconciliation.
type SerialBlock struct {
	Contract string `db:"code" json:"contract"`
	Registry string `db:"registry" json:"registry"`
	Prefix   string `db:"prefix" json:"prefix"`
	First    int64  `db:"first" json:"first"`
	Last     int64  `db:"last" json:"last"`
	// Label is the block as its registry writes it (see SerialBlocks).
	Label   string        `db:"-" json:"label"`
	State   string        `db:"state" json:"state"`
	Entry   string        `db:"entry_id" json:"entry"`
	Vintage int           `db:"vintage" json:"vintage,omitempty"` // of the entry that last moved the block
	Tonnes  ledger.Tonnes `db:"-" json:"tonnes"`
}

// SerialBlocks lists the serial blocks of one contract, or of all when code is "".
func (s *Store) SerialBlocks(ctx context.Context, code string) ([]SerialBlock, error) {
	var rows []struct {
		SerialBlock
		EvLabel sql.NullString `db:"ev_label"`
		EvFirst sql.NullInt64  `db:"ev_first"`
		EvLast  sql.NullInt64  `db:"ev_last"`
	}
	// ev is the serial event by which the block's entry put (a range holding) the block in its
	// state: the block itself when the entry moved exactly it, else the range a later move
	// split it from (a delivery partly retired keeps its entry for what remains).
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `
			SELECT c.code, s.registry, s.prefix, lower(s.serials) AS first, upper(s.serials) - 1 AS last, s.state, s.entry_id,
			       coalesce(e.vintage, 0) AS vintage,
			       ev.label AS ev_label, lower(ev.serials) AS ev_first, upper(ev.serials) - 1 AS ev_last
			  FROM serial_blocks s JOIN contracts c ON c.id = s.contract_id JOIN entries e ON e.id = s.entry_id
			  LEFT JOIN LATERAL (
			        SELECT v.label, v.serials FROM serial_events v
			         WHERE v.entry_id = s.entry_id AND v.registry = s.registry AND v.prefix = s.prefix
			           AND v.to_state = s.state AND v.serials @> s.serials
			         ORDER BY v.serials = s.serials DESC, v.id DESC LIMIT 1) ev ON true
			 WHERE $1 = '' OR c.code = $1
			 ORDER BY c.code, s.registry, s.prefix, lower(s.serials)`, code)
	})
	out := make([]SerialBlock, len(rows))
	for i, r := range rows {
		b := r.SerialBlock
		b.Tonnes = ledger.SerialTonnes(b.Registry, b.Last-b.First+1)
		ev := ledger.SerialRange{Prefix: b.Prefix, First: b.First, Last: b.Last}
		if r.EvLabel.Valid {
			ev = ledger.SerialRange{Prefix: b.Prefix, First: r.EvFirst.Int64, Last: r.EvLast.Int64, Label: r.EvLabel.String}
		}
		// The registry's text as recorded when the block is the whole of ev; its registry form
		// rebuilt for the block when a later move split it from ev and the form allows it;
		// else the generic PREFIX:FIRST-LAST.
		b.Label = ev.Piece(b.First, b.Last).Label
		out[i] = b
	}
	return out, err
}

// SerialLabels returns the serials of the entries of contract code that moved serials, as
// their requests wrote them (serial_events.label), by entry id: the entries' metadata keeps
// the generic PREFIX:FIRST-LAST form, sealed by their hashes, and the operations export writes
// these so that an import records the same text.
func (s *Store) SerialLabels(ctx context.Context, code string) (map[string]string, error) {
	var rows []struct {
		Entry string `db:"entry_id"`
		Label string `db:"label"`
	}
	err := s.read(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `
			SELECT v.entry_id::text AS entry_id, min(v.label) AS label
			  FROM serial_events v JOIN contracts c ON c.id = v.contract_id
			 WHERE c.code = $1 AND v.label <> ''
			 GROUP BY v.entry_id HAVING count(*) = 1`, code)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Entry] = r.Label
	}
	return out, nil
}
