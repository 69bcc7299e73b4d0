package daemon

import (
	"reflect"
	"testing"
	"time"

	"github.com/myha/myha/failover"
)

// Every per-cluster map of the replicated state reaches a cluster's view
// (filled through reflection, so a map added to fsmState without being
// copied in view fails here), and other clusters' entries do not.
func TestFSMViewCopiesEveryPerClusterMap(t *testing.T) {
	f := newFSM()
	st := reflect.ValueOf(&f.st).Elem()
	for i := 0; i < st.NumField(); i++ {
		fv, ft := st.Field(i), st.Type().Field(i)
		if fv.Kind() != reflect.Map || ft.Type.Key().Kind() != reflect.String {
			continue
		}
		m := reflect.MakeMap(ft.Type)
		for _, k := range []string{"c", "other"} {
			v := reflect.New(ft.Type.Elem()).Elem()
			if v.Kind() == reflect.Pointer {
				v.Set(reflect.New(ft.Type.Elem().Elem()))
			}
			m.SetMapIndex(reflect.ValueOf(k), v)
		}
		fv.Set(m)
	}
	f.st.Epoch = 7
	f.st.History = []failover.Report{{Cluster: "c", Epoch: 1}, {Cluster: "other", Epoch: 2}}
	v := reflect.ValueOf(f.view("c"))
	for i := 0; i < v.NumField(); i++ {
		fv, ft := v.Field(i), v.Type().Field(i)
		if fv.Kind() != reflect.Map || ft.Type.Key().Kind() != reflect.String {
			continue
		}
		if !fv.MapIndex(reflect.ValueOf("c")).IsValid() {
			t.Errorf("view(c).%s lacks c's entry: copy it in fsm.view", ft.Name)
		}
		if fv.MapIndex(reflect.ValueOf("other")).IsValid() {
			t.Errorf("view(c).%s holds another cluster's entry", ft.Name)
		}
	}
	got := f.view("c")
	if got.Epoch != 7 || len(got.History) != 1 || got.History[0].Epoch != 1 {
		t.Fatalf("epoch %d, history %+v", got.Epoch, got.History)
	}
	// A view is a copy: changing it leaves the state alone.
	got.Open["c"].Epoch = 99
	got.Blocked["c"] = time.Now()
	if f.st.Open["c"].Epoch == 99 || !f.st.Blocked["c"].IsZero() {
		t.Fatal("the view shares memory with the state")
	}
}
