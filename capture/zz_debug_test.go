package capture
import ("testing";"os";"fmt";"io";"github.com/flowtrack/flowtrack/flows")
func TestZZDebug(t *testing.T){
	f := os.Getenv("ZZ"); if f=="" { t.Skip() }
	src, err := OpenFile(f, ""); if err != nil { t.Fatal(err) }
	d := NewDecoder()
	for i:=1;;i++ {
		data, ci, lt, err := src.Next(); if err == io.EOF { break }; if err != nil { t.Fatal(err) }
		var p flows.Packet
		r := d.Decode(lt, data, ci, &p)
		fmt.Println(i, r, p.Tuple.SrcPort, p.Flags, p.Seq, p.Ack, p.PayloadLen, p.Snapped, p.Tuple.VLAN)
	}
}
