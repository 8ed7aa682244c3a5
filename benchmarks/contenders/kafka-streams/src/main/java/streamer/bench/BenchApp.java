package streamer.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The benchmark workloads as a Kafka Streams app, configured by the harness's BENCH_* variables.
 *
 * <p>Settings differ from Kafka Streams' defaults only where the workloads must be equivalent
 * across contenders: the record cache is off (every count update is emitted, as the Python
 * contenders do), one stream thread (the Python contenders use one core for processing), and
 * the commit interval the harness gives everyone. For emit on window close, the check for closed
 * windows runs on every record instead of at most once a second of wall-clock time (an internal
 * setting): throttled, the windows that close in the input's last second would never be emitted,
 * as no later record comes to trigger the check.
 */
public final class BenchApp {
  private static final ObjectMapper MAPPER = new ObjectMapper();
  /** The windowed workloads' tumbling window, as WINDOW_MS in benchmarks/contenders/spec.py. */
  private static final Duration WINDOW = Duration.ofMillis(10_000);
  /** The enrich workload's table field, as TABLE_FIELD in benchmarks/contenders/spec.py. */
  private static final String TABLE_FIELD = "tier";

  private BenchApp() {}

  /** JSON values as Jackson trees: parsed on the way in, written on the way out. */
  static Serde<JsonNode> jsonSerde() {
    Serializer<JsonNode> serializer = (topic, node) -> {
      try {
        return node == null ? null : MAPPER.writeValueAsBytes(node);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    };
    Deserializer<JsonNode> deserializer = (topic, bytes) -> {
      try {
        return bytes == null ? null : MAPPER.readTree(bytes);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    };
    return Serdes.serdeFrom(serializer, deserializer);
  }

  static Topology topology(String workload, String input, String output, String tableTopic) {
    Serde<JsonNode> json = jsonSerde();
    StreamsBuilder builder = new StreamsBuilder();
    KStream<String, JsonNode> records = builder.stream(input, Consumed.with(Serdes.String(), json));
    switch (workload) {
      case "enrich" -> {
        // A KTable of the table topic; each record joined with its key's row (KStream.join(KTable)).
        KTable<String, JsonNode> table = builder.table(tableTopic, Consumed.with(Serdes.String(), json),
            Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as("users")
                .withKeySerde(Serdes.String())
                .withValueSerde(json));
        records
            // the record's own tree, just parsed, gets the field (as the stateless workload's flag)
            .join(table, (value, row) -> (JsonNode) ((ObjectNode) value).set(TABLE_FIELD, row.get(TABLE_FIELD)))
            .to(output, Produced.with(Serdes.String(), json));
      }
      case "stateless" -> records
          .filter((key, value) -> value.get("amount").asLong() % 4 != 0)
          .mapValues(value -> (JsonNode) ((ObjectNode) value).put("flag", true))
          .to(output, Produced.with(Serdes.String(), json));
      case "count" -> records
          .groupByKey(Grouped.with(Serdes.String(), json))
          .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
              .withKeySerde(Serdes.String())
              .withValueSerde(Serdes.Long()))
          .toStream()
          .mapValues(count -> Long.toString(count)) // a JSON number, as the other contenders write it
          .to(output, Produced.with(Serdes.String(), Serdes.String()));
      case "windowed-update", "windowed-close" -> {
        TimeWindowedKStream<String, JsonNode> windowed = records
            .groupByKey(Grouped.with(Serdes.String(), json))
            .windowedBy(TimeWindows.ofSizeWithNoGrace(WINDOW));
        if (workload.equals("windowed-close")) {
          windowed = windowed.emitStrategy(EmitStrategy.onWindowClose());
        }
        windowed
            .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("counts")
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.Long()))
            .toStream()
            // key@start and a JSON number, as the other contenders write them
            .map((key, count) -> KeyValue.pair(key.key() + "@" + key.window().start(), Long.toString(count)))
            .to(output, Produced.with(Serdes.String(), Serdes.String()));
      }
      default -> throw new IllegalArgumentException("unknown workload " + workload);
    }
    return builder.build();
  }

  public static void main(String[] args) throws InterruptedException {
    Map<String, String> env = System.getenv();
    String guarantee = env.getOrDefault("BENCH_GUARANTEE", "at_least_once");
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, env.getOrDefault("BENCH_APP_ID", "bench"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, env.getOrDefault("BENCH_BOOTSTRAP", "127.0.0.1:9092"));
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        guarantee.equals("exactly_once") ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, env.getOrDefault("BENCH_COMMIT_INTERVAL_MS", "100"));
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(env.getOrDefault("BENCH_JAVA_THREADS", "1")));
    props.put(StreamsConfig.STATE_DIR_CONFIG, env.getOrDefault("BENCH_STATE_DIR", "/tmp/kafka-streams-bench"));
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);

    Topology topology = topology(env.getOrDefault("BENCH_WORKLOAD", "stateless"),
        env.getOrDefault("BENCH_INPUT", "bench-input"), env.getOrDefault("BENCH_OUTPUT", "bench-output"),
        env.getOrDefault("BENCH_TABLE", "bench-table"));
    KafkaStreams streams = new KafkaStreams(topology, props);
    CountDownLatch done = new CountDownLatch(1);
    streams.setUncaughtExceptionHandler(error -> {
      error.printStackTrace();
      done.countDown();
      return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
        done.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(30));
      done.countDown();
    }));
    streams.start();
    done.await();
    streams.close(Duration.ofSeconds(30));
    System.exit(streams.state() == KafkaStreams.State.ERROR ? 1 : 0);
  }
}
