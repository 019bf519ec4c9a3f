package sandbox

import (
	"reflect"
	"testing"
)

func TestListeningPorts(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 0100007F:C33F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0A000002:1F40 0A000001:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4 1 0 100 0 0 10 0
   1: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5 1 0 100 0 0 10 0
garbage line
`)
	// 0x1F40 = 8000 (listening twice, and once as an established connection), 0xC33F =
	// 49983 (the agent, left out), 0x50 = 80.
	if got, want := listeningPorts(table), []int{80, 8000}; !reflect.DeepEqual(got, want) {
		t.Errorf("listeningPorts = %v; want %v", got, want)
	}
	if got := listeningPorts(nil); len(got) != 0 {
		t.Errorf("empty table = %v", got)
	}
}
