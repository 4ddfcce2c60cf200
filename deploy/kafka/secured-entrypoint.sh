#!/usr/bin/env bash
# Entry point of the secured broker of docker-compose.secured.yml (docs/security.md).
#
# Builds the broker's properties from the files shared with `ioc kafka start`
# (server.properties, secured.properties) and the KAFKA_* variables of the compose file, adds
# the admin's SCRAM credential when it formats fresh storage, and runs the broker. The admin
# password is read from a file (a compose secret); it is never in the environment or the
# output.
set -euo pipefail

kafka_home=${KAFKA_HOME:-/opt/kafka}
shared=${IOC_SHARED_CONFIG:-/mnt/shared/config}
secret=${IOC_KAFKA_ADMIN_PASSWORD_FILE:-/run/secrets/kafka_admin_password}
admin=${IOC_KAFKA_ADMIN_USERNAME:-admin}
run=${IOC_RUN_DIR:-/tmp/ioc-kafka}

fail() { echo "secured-entrypoint: $*" >&2; exit 1; }

[[ -r $secret ]] || fail "không đọc được mật khẩu quản trị / cannot read the admin password: $secret"
password=$(head -n 1 "$secret")
# The rule of ioc.security.check_admin_password: the password is quoted in a JAAS line and in
# the format tool's --add-scram list, where a quote, comma, bracket or equals sign would end it.
allowed='^[A-Za-z0-9._~+/!@#%^*():;?-]{12,}$'
[[ $password =~ $allowed ]] || fail "mật khẩu quản trị: ít nhất 12 \
ký tự A-Z a-z 0-9 . _ ~ + / ! @ # % ^ * ( ) : ; ? - / the admin password: at least 12 of \
A-Z a-z 0-9 . _ ~ + / ! @ # % ^ * ( ) : ; ? -"
for variable in CLUSTER_ID KAFKA_NODE_ID KAFKA_LISTENERS KAFKA_ADVERTISED_LISTENERS \
  KAFKA_LISTENER_SECURITY_PROTOCOL_MAP KAFKA_CONTROLLER_QUORUM_VOTERS KAFKA_LOG_DIRS; do
  [[ -n ${!variable:-} ]] || fail "$variable is not set"
done

umask 077
mkdir -p "$run"
jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$admin\" password=\"$password\";"
{
  cat "$shared/server.properties"
  echo
  cat "$shared/secured.properties"
  echo
  echo "# From the compose file's environment:"
  echo "node.id=$KAFKA_NODE_ID"
  echo "listeners=$KAFKA_LISTENERS"
  echo "advertised.listeners=$KAFKA_ADVERTISED_LISTENERS"
  echo "listener.security.protocol.map=$KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"
  echo "controller.quorum.voters=$KAFKA_CONTROLLER_QUORUM_VOTERS"
  echo "log.dirs=$KAFKA_LOG_DIRS"
  echo "super.users=User:$admin;User:ANONYMOUS"
  # Every SASL listener needs a JAAS entry for the server side of SCRAM; on the inter-broker
  # listener it is also the broker's own login.
  for listener in $(tr ',' '\n' <<<"$KAFKA_LISTENER_SECURITY_PROTOCOL_MAP" | sed -n 's/:SASL_PLAINTEXT$//p'); do
    echo "listener.name.${listener,,}.scram-sha-512.sasl.jaas.config=$jaas"
  done
} >"$run/server.properties"
# For the health check: the admin's client login.
printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=SCRAM-SHA-512" \
  "sasl.jaas.config=$jaas" >"$run/admin-client.properties"

if [[ ! -e "$KAFKA_LOG_DIRS/meta.properties" ]]; then
  # The admin's SCRAM credential, in the metadata log from the start. The image has no tool to
  # salt it first (the local runner passes only the salted form), so for the two seconds of
  # the first format the password is on a command line inside this container.
  "$kafka_home/bin/kafka-storage.sh" format --cluster-id "$CLUSTER_ID" \
    --config "$run/server.properties" --ignore-formatted \
    --add-scram "SCRAM-SHA-512=[name=$admin,password=$password]"
fi
unset password jaas
exec "$kafka_home/bin/kafka-server-start.sh" "$run/server.properties"
