#!/bin/sh
# Seeds the Vault dev server of deploy/compose.yaml for the gateway. The
# vault-init service runs it once per `docker compose up`, with the root token,
# before the gateway starts:
#
#  - every secret the vendor profiles name (secret:, client_id:, client_secret:
#    references path#key) and consentgate's own keys go into the KV v2 mount
#    "secret": the HMAC keys and vendor API keys as random placeholders, the
#    audit checkpoint key as a fresh Ed25519 PKCS#8 key, the vendor client
#    certificates and keys from the dev PKI (`consentgate dev`). Replace the
#    vendor placeholders with real credentials to call real vendors. Values that
#    exist are kept, so a rerun changes nothing (a new subject_hmac would make
#    earlier audit records unsearchable by person);
#  - a read-only policy and an AppRole for the gateway, whose role id and secret
#    id are written for the gateway's user only. The gateway never sees the root
#    token.
#
# POSIX sh, so it runs in the hashicorp/vault image (busybox) and in the tests
# (deploy/deploy_test.go runs it against a real Vault server). Nothing secret is
# printed.
set -eu

: "${VAULT_ADDR:?}" "${VAULT_TOKEN:?}"
vendors_dir="${VENDORS_DIR:-/vendors}"
pki_dir="${PKI_DIR:-/pki}"
approle_dir="${APPROLE_DIR:-/approle}"
gateway_uid="${GATEWAY_UID:-65532}"
mount=secret

log() { echo "seed-vault: $*" >&2; }

random_hex() { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }

# An Ed25519 private key as PKCS#8 PEM: the fixed DER prefix of RFC 8410 and 32
# random bytes (the image has no openssl). Generated at every seeding; nothing
# secret is in this file (the armour label is assembled, so no key-shaped text is).
ed25519_pem() {
	label="PRIVATE KEY"
	echo "-----BEGIN $label-----"
	{
		printf '\060\056\002\001\000\060\005\006\003\053\145\160\004\042\004\040'
		head -c 32 /dev/urandom
	} | base64 | tr -d '\n'
	echo
	echo "-----END $label-----"
}

# put_key PATH KEY: stores standard input as field KEY of the KV secret PATH,
# unless the field is there already.
put_key() {
	if vault kv get -mount="$mount" -field="$2" "$1" >/dev/null 2>&1; then
		cat >/dev/null
		log "kept $1#$2"
		return
	fi
	if vault kv get -mount="$mount" "$1" >/dev/null 2>&1; then
		vault kv patch -mount="$mount" "$1" "$2=-" >/dev/null
	else
		vault kv put -mount="$mount" "$1" "$2=-" >/dev/null
	fi
	log "stored $1#$2"
}

# The dev PKI's client certificate (and key) for a vendor's client_cert and
# client_key, as `consentgate dev` gives its sandboxes.
dev_cert() {
	case "$1" in
	vendors/kb) echo "$pki_dir/vendors/kb-server.crt" ;;
	vendors/banqware) echo "$pki_dir/vendors/banqware-client.crt" ;;
	*) return 1 ;;
	esac
}

seed_ref() {
	path="${1%%#*}"
	key="${1#*#}"
	case "$key" in
	client_cert | client_key)
		crt="$(dev_cert "$path")" || {
			log "no dev certificate for $path#$key: add one to dev_cert"
			exit 1
		}
		file="$crt"
		[ "$key" = client_key ] && file="${crt%.crt}.key"
		[ -r "$file" ] || {
			log "$file is not readable: run \`consentgate dev\` once to make the dev PKI"
			exit 1
		}
		put_key "$path" "$key" <"$file"
		;;
	*) random_hex | put_key "$path" "$key" ;;
	esac
}

refs="$(sed -nE "s/^[[:space:]-]*(secret|client_id|client_secret):[[:space:]]*[\"']?([A-Za-z0-9_.\/-]+#[A-Za-z0-9_.-]+)[\"']?[[:space:]]*$/\2/p" "$vendors_dir"/*.yaml | sort -u)"
[ -n "$refs" ] || {
	log "no secret references in $vendors_dir/*.yaml"
	exit 1
}
for ref in $refs; do
	seed_ref "$ref"
done
random_hex | put_key consentgate/keys subject_hmac
random_hex | put_key consentgate/keys field_hmac
random_hex | put_key consentgate/keys token_vault
ed25519_pem | put_key consentgate/keys audit_signing

# The gateway's access: read, nothing else.
vault policy write consentgate - >/dev/null <<'EOF'
path "secret/data/vendors/*" {
  capabilities = ["read"]
}
path "secret/data/consentgate/*" {
  capabilities = ["read"]
}
EOF
vault read sys/auth/approle >/dev/null 2>&1 || vault auth enable approle >/dev/null
# No secret id TTL or use limit: the gateway logs in again with the same files
# whenever its token can no longer be renewed.
vault write auth/approle/role/consentgate token_policies=consentgate token_ttl=1h token_max_ttl=24h \
	secret_id_ttl=0 secret_id_num_uses=0 >/dev/null

umask 077
vault read -field=role_id auth/approle/role/consentgate/role-id >"$approle_dir/.role-id"
vault write -f -field=secret_id auth/approle/role/consentgate/secret-id >"$approle_dir/.secret-id"
for f in role-id secret-id; do
	chmod 0400 "$approle_dir/.$f"
	chown "$gateway_uid:$gateway_uid" "$approle_dir/.$f"
	mv -f "$approle_dir/.$f" "$approle_dir/$f"
done
log "AppRole consentgate: role id and secret id in $approle_dir for uid $gateway_uid"
