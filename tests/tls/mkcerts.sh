#!/usr/bin/env bash
# Makes the certificates the TLS tests use, fresh each run (no private key is ever
# committed): mkcerts.sh <dir>. ECDSA P-256, so it takes well under a second.
#
#   ca.crt            the CA the server's and clients' good certificates come from
#   other-ca.crt      an unrelated CA ("wrong CA")
#   server.{crt,key}  localhost / 127.0.0.1, signed by ca
#   server2.{crt,key} the same names signed by other-ca (the reload test swaps it in)
#   expired.{crt,key} localhost / 127.0.0.1, signed by ca, already expired
#   node.{crt,key}    localhost / 127.0.0.1, signed by ca, for server and client use: a cluster
#                     node's, which it also presents calling the others (--tls-peer-ca)
#   client.{crt,key}  a client certificate signed by ca (mTLS)
#   client-other.{crt,key}    signed by other-ca
#   client-expired.{crt,key}  signed by ca, already expired
set -euo pipefail
dir=${1:?usage: mkcerts.sh <dir>}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }
ca() { # name cn
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -out "$1.crt" 2>/dev/null
}
leaf() { # name cn signer days ext
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$5" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days "$4" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
server_ext='subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth'
client_ext='extendedKeyUsage=clientAuth'
node_ext='subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth'
ca ca "NexaDB test CA"
ca other-ca "Some other CA"
leaf server localhost ca 30 "$server_ext"
leaf server2 localhost other-ca 30 "$server_ext"
leaf expired localhost ca -1 "$server_ext"   # notAfter before now: expired
leaf node localhost ca 30 "$node_ext"
leaf client test-client ca 30 "$client_ext"
leaf client-other test-client other-ca 30 "$client_ext"
leaf client-expired test-client ca -1 "$client_ext"
rm -f ./*.srl
