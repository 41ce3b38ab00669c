# Runs inside the VM (bb-vm exec, as user node). Reports what provisioning and the network
# gave the agent as key=value lines, prints READY, then reads two lines from the test:
# host:ports the VM must NOT reach (the bundle's bridge address, a host service on 127.0.0.1). Exits 7, so the test can
# see the exit code come back through bb-vm, flow.sh and just.
set -u
ca=/usr/local/share/ca-certificates/bot-bottle.crt
echo "user=$(id -un)"
echo "proxy=$HTTPS_PROXY"
echo "supervise=${BB_SUPERVISE_URL:-}"
echo "ca_sha256=$(sha256sum < "$ca" | cut -d' ' -f1)"
grep -qF "$(sed -n 2p "$ca")" /etc/ssl/certs/ca-certificates.crt && echo "ca_in_system_bundle=yes"
echo "gitconfig=$(stat -c %U "$HOME/.gitconfig") $(git config --global init.defaultBranch)"
echo "mcp=$(tr -d ' \n' < "$HOME/.bot-bottle/mcp.json")"
echo "workdir_marker=$(cat "$HOME/work/marker" 2>/dev/null)"
echo "interfaces=$(ls /sys/class/net | tr '\n' ' ')"
# The agent's way out, as any tool would take it: HTTPS_PROXY from the environment.
curl -sS -v -m 20 -o /dev/null https://other.invalid 2>/tmp/curl.log
echo "curl_exit=$?"
grep -iE '^< (HTTP/|x-bot-bottle-firewall)' /tmp/curl.log | tr -d '\r' | sed 's/^/curl: /'
# supervise over MCP, direct (NO_PROXY holds the loopback address).
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"smolmachines-test","version":"0"}}}'
echo "supervise_init=$(curl -sS -m 20 -X POST "$BB_SUPERVISE_URL" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' -d "$init" | grep -o '"serverInfo":{"name":"[^"]*"')"
echo READY
read -r target
if timeout 5 bash -c 'exec 3<>"/dev/tcp/$1"' _ "${target%:*}/${target##*:}" 2>/dev/null; then echo "bridge=reached"; else echo "bridge=unreachable"; fi
# Then a host service on 127.0.0.1: outside this bottle's own loopback address.
read -r host_target
if timeout 5 bash -c 'exec 3<>"/dev/tcp/$1"' _ "${host_target%:*}/${host_target##*:}" 2>/dev/null; then echo "host_loopback=reached"; else echo "host_loopback=unreachable"; fi
exit 7
