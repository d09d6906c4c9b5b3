# client	server	client_state	server_state
# ss snapshot taken after packet 9 of close-client6-nolastack.pcap (made from kernel/close-client6.pcap: drop=c:A#last)
[fd99::1]:41842	[fd99::2]:7021	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      [fd99::1]:41842 [fd99::2]:7021
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   [fd99::2]:7021 [::]:*
