# client	server	client_state	server_state
# ss snapshot taken after packet 8 of last-ack6-c2s.pcap (made from kernel/last-ack6.pcap: oneway=c)
[fd99::1]:46746	[fd99::2]:7022	TIME-WAIT	LAST-ACK
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      [fd99::1]:46746 [fd99::2]:7022
# ss -tanH in ftrec-srv (server):
#   LISTEN   0      4096   [fd99::2]:7022      [::]:*    
#   LAST-ACK 0      1      [fd99::2]:7022 [fd99::1]:46746
