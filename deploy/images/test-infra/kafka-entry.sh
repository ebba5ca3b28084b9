#!/bin/sh
# Single-node Kafka (KRaft, broker + controller) for testcontainers. The container runs on the host network
# (no port mapping, so the advertised address is simply 127.0.0.1:$KAFKA_PORT).
set -eu
: "${KAFKA_PORT:=9092}" "${KAFKA_CONTROLLER_PORT:=9093}"
DATA=/tmp/kafka-data
mkdir -p "$DATA"
cat >/tmp/server.properties <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=-1
PROPS
printf 'log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\nlog4j.logger.kafka.request.logger=WARN\n' >/tmp/log4j.properties
java -cp '/opt/kafka/lib/*' kafka.tools.StorageTool format -t "$(java -cp '/opt/kafka/lib/*' kafka.tools.StorageTool random-uuid | tail -1)" \
  -c /tmp/server.properties >/dev/null
exec java -Xms256m -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j.configuration=file:/tmp/log4j.properties \
  -cp '/opt/kafka/lib/*' kafka.Kafka /tmp/server.properties
