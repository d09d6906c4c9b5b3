package peek

import (
	"errors"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// Bounds on what one DNS response may add: real answers have a handful of
// records and CNAME chains of two or three links.
const (
	maxAnswers = 64 // answer records read per response
	maxChain   = 8  // names in one CNAME chain
)

var (
	errNotResponse = errors.New("DNS message is not a successful response")
	errDNSName     = errors.New("DNS name is not a host name")
)

// answer is one address a DNS response gave, with the chain of names that
// led to it: chain[0] is the name the client asked for (the question, or
// the first owner of the chain), each next one the CNAME target of the
// one before, the last the owner of the address record.
type answer struct {
	addr  netip.Addr
	chain []string
	ttl   uint32 // the smallest TTL along the chain, seconds
}

// dnsRecord is one CNAME or address record of a response.
type dnsRecord struct {
	owner  string
	target string // a CNAME's target
	addr   netip.Addr
	ttl    uint32
}

// parseDNS reads the address answers of a DNS response (RFC 1035 section
// 4), following CNAME chains back to the name asked for. A response that
// is not one (a query, an error code) or that is malformed anywhere in
// its header, question or answer section gives an error and no answer;
// records of other types are skipped. With cut (the capture kept only
// the message's start), the answers read before the cut are kept.
func parseDNS(msg []byte, cut bool) ([]answer, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	if !h.Response || h.RCode != dnsmessage.RCodeSuccess {
		return nil, errNotResponse
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	question, _ := hostName(q.Name.Data[:q.Name.Length])
	if err := p.SkipAllQuestions(); err != nil {
		return nil, err
	}
	recs, err := readAnswers(&p)
	if err != nil && (!cut || errors.Is(err, errDNSName)) {
		return nil, err
	}
	var out []answer
	for i := range recs {
		if recs[i].addr.IsValid() {
			out = append(out, chainOf(recs, i, question))
		}
	}
	return out, nil
}

// readAnswers reads the CNAME, A and AAAA records of the answer section.
func readAnswers(p *dnsmessage.Parser) ([]dnsRecord, error) {
	var recs []dnsRecord
	for range maxAnswers {
		h, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return recs, err
		}
		if h.Class != dnsmessage.ClassINET {
			if err := p.SkipAnswer(); err != nil {
				return recs, err
			}
			continue
		}
		owner, ok := hostName(h.Name.Data[:h.Name.Length])
		r := dnsRecord{owner: owner, ttl: h.TTL}
		switch h.Type {
		case dnsmessage.TypeA:
			a, err := p.AResource()
			if err != nil {
				return recs, err
			}
			r.addr = netip.AddrFrom4(a.A)
		case dnsmessage.TypeAAAA:
			a, err := p.AAAAResource()
			if err != nil {
				return recs, err
			}
			r.addr = netip.AddrFrom16(a.AAAA)
		case dnsmessage.TypeCNAME:
			c, err := p.CNAMEResource()
			if err != nil {
				return recs, err
			}
			t, tok := hostName(c.CNAME.Data[:c.CNAME.Length])
			if !tok {
				ok = false
			}
			r.target = t
		default:
			if err := p.SkipAnswer(); err != nil {
				return recs, err
			}
			continue
		}
		if !ok {
			return nil, errDNSName
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// chainOf builds the chain of names that leads to the address record
// recs[i]: from its owner back through the CNAMEs whose target is the
// name before, at most maxChain names, stopping at a loop.
func chainOf(recs []dnsRecord, i int, question string) answer {
	a := answer{addr: recs[i].addr, ttl: recs[i].ttl}
	rev := []string{recs[i].owner}
	for len(rev) < maxChain {
		cur := rev[len(rev)-1]
		if cur == question {
			break
		}
		found := -1
		for j := range recs {
			if recs[j].target == cur && !contains(rev, recs[j].owner) {
				found = j
				break
			}
		}
		if found < 0 {
			break
		}
		rev = append(rev, recs[found].owner)
		a.ttl = min(a.ttl, recs[found].ttl)
	}
	a.chain = make([]string, len(rev))
	for k, n := range rev {
		a.chain[len(rev)-1-k] = n
	}
	return a
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
