# client	server	client_state	server_state
# ss snapshot taken after packet 24 of fin-lost-once-nolastack.pcap (made from impaired/fin-lost-once.pcap: drop=c:A#last)
10.99.0.1:55232	10.99.0.2:7109	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:55232 10.99.0.2:7109
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7109 0.0.0.0:*
