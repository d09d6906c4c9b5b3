# client	server	client_state	server_state
# ss snapshot taken after packet 3 of established6-s2c.pcap (made from kernel/established6.pcap: oneway=s)
[fd99::1]:53784	[fd99::2]:7020	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      [fd99::1]:53784 [fd99::2]:7020
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   [fd99::2]:7020      [::]:*    
#   ESTAB  0      0      [fd99::2]:7020 [fd99::1]:53784
