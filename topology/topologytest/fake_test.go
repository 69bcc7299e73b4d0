package topologytest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/myha/myha/topology"
)

func TestFakeScriptsAndLogs(t *testing.T) {
	ctx := context.Background()
	f := New()
	db1 := f.Server("db1:3306")
	db1.On("SELECT 1").Return(topology.Row{"1": "1"})
	db1.OnPrefix("SHOW ALL").Return(topology.Row{"Gtid_IO_Pos": "0-1-5"}).Times(1)
	db1.OnPrefix("SHOW ALL").Return()
	boom := errors.New("boom")
	db1.OnRegexp(`^STOP SLAVE( '.*')? IO_THREAD$`).Fail(boom)
	f.Server("db2:3306").FailDial(nil)

	q, err := f.Dial(ctx, "db1:3306")
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := q.Query(ctx, "SELECT 1"); err != nil || len(rows) != 1 || rows[0]["1"] != "1" {
		t.Fatalf("exact rule: %v %v", rows, err)
	}
	if rows, _ := q.Query(ctx, "SHOW ALL SLAVES STATUS"); len(rows) != 1 {
		t.Fatalf("first SHOW ALL: %v", rows)
	}
	if rows, err := q.Query(ctx, "SHOW ALL SLAVES STATUS"); err != nil || len(rows) != 0 {
		t.Fatalf("Times(1) should fall through to zero rows: %v %v", rows, err)
	}
	err = q.Exec(ctx, "STOP SLAVE IO_THREAD")
	var se *topology.ServerError
	if !errors.Is(err, boom) || !errors.As(err, &se) || se.Addr != "db1:3306" || se.Op != "STOP SLAVE IO_THREAD" {
		t.Fatalf("scripted failure: %v", err)
	}
	if err := q.Exec(ctx, "SET GLOBAL read_only=1"); err != nil {
		t.Fatalf("unscripted statements succeed: %v", err)
	}
	if _, err := f.Dial(ctx, "db2:3306"); !errors.Is(err, ErrRefused) {
		t.Fatalf("FailDial: %v", err)
	}
	if _, err := f.Dial(ctx, "db9:3306"); !errors.Is(err, ErrRefused) {
		t.Fatalf("undeclared server: %v", err)
	}
	want := []string{"SELECT 1", "SHOW ALL SLAVES STATUS", "SHOW ALL SLAVES STATUS", "STOP SLAVE IO_THREAD", "SET GLOBAL read_only=1"}
	if got := f.Statements("db1:3306"); !slices.Equal(got, want) {
		t.Fatalf("log:\n got %q\nwant %q", got, want)
	}
	q.Close()
	q.Close()
	if f.Closes("db1:3306") != 1 || f.Dials("db2:3306") != 1 {
		t.Fatalf("closes %d, dials %d", f.Closes("db1:3306"), f.Dials("db2:3306"))
	}
	if err := q.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a closed session still answers")
	}
}

func TestFakeBlockUntilCancel(t *testing.T) {
	f := New()
	f.Server("db1:3306").OnPrefix("SELECT MASTER_GTID_WAIT").Block()
	q, err := f.Dial(context.Background(), "db1:3306")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := q.Query(ctx, "SELECT MASTER_GTID_WAIT('0-1-5', 1.000) AS r")
		done <- err
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := f.WaitFor(wctx, func(c []Call) bool { return len(c) == 1 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("blocked statement returned %v", err)
		}
	case <-wctx.Done():
		t.Fatal("blocked statement did not return after cancel")
	}
}
