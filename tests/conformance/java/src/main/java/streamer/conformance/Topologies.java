package streamer.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.time.Duration;
import java.util.List;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KGroupedTable;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindowedKStream;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The named topologies of the conformance suite. Each has a twin in tests/conformance/topologies.py
 * that must mean the same thing; keep the two in step (same topics, same functions).
 *
 * <p>Stream inputs are read from "in" (merge: "in-a" and "in-b"), tables from "table-in"; keys are
 * strings, values JSON. Results go to "out" (split: "out-zero", "out-one", "out-other").
 */
final class Topologies {
  static final String IN = "in";
  static final String TABLE_IN = "table-in";
  static final String OUT = "out";

  private static final Serde<String> STRING = Serdes.String();
  private static final Serde<JsonNode> TREE = Json.tree();

  private Topologies() {}

  static Topology build(String name, JsonNode params) {
    StreamsBuilder b = new StreamsBuilder();
    switch (name) {
      case "filter" -> toOut(stream(b, IN).filter((k, v) -> v.asLong() % 2 == 0));
      case "filter_not" -> toOut(stream(b, IN).filterNot((k, v) -> v.asLong() % 3 == 0));
      case "map" -> toOut(stream(b, IN).map((k, v) -> KeyValue.pair(k + ":" + v.asLong() % 3, num(v.asLong() * 10))));
      case "map_values" -> toOut(stream(b, IN).mapValues(v -> num(v.asLong() + 1)));
      case "flat_map" -> toOut(stream(b, IN).flatMap((k, v) -> v.asLong() % 3 == 0
          ? List.<KeyValue<String, JsonNode>>of()
          : List.of(KeyValue.pair(k, v), KeyValue.pair(k + "!", num(v.asLong() * 2)))));
      case "flat_map_values" -> toOut(stream(b, IN).flatMapValues(v -> v.asLong() % 2 == 1
          ? List.of(v, num(v.asLong() + 100))
          : List.<JsonNode>of()));
      case "select_key" -> toOut(stream(b, IN).selectKey((k, v) -> "k" + v.asLong() % 4));
      case "split" -> stream(b, IN).split()
          .branch((k, v) -> v.asLong() % 3 == 0, Branched.withConsumer(s -> s.to("out-zero", produced())))
          .branch((k, v) -> v.asLong() % 3 == 1, Branched.withConsumer(s -> s.to("out-one", produced())))
          .defaultBranch(Branched.withConsumer(s -> s.to("out-other", produced())));
      case "merge" -> toOut(stream(b, "in-a").mapValues(v -> num(v.asLong() * 2)).merge(stream(b, "in-b")));
      case "count" -> toOut(byKey(b).count(kv(Serdes.Long())));
      case "group_by_count" -> toOut(stream(b, IN)
          .groupBy((k, v) -> v == null ? "gnull" : "g" + v.asLong() % 3, Grouped.with(STRING, TREE))
          .count(kv(Serdes.Long())));
      case "reduce" -> toOut(byKey(b).reduce((agg, v) -> num(agg.asLong() + v.asLong()), kv(TREE)));
      case "aggregate" -> toOut(byKey(b).aggregate(() -> "", (k, v, agg) -> agg + v.asLong() + ";", kv(STRING)));
      case "to_table" -> toOut(stream(b, IN).toTable(Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as(
          "to-table-store").withKeySerde(STRING).withValueSerde(TREE)));
      case "table_source" -> toOut(table(b));
      case "table_filter" -> toOut(table(b).filter((k, v) -> v.asLong() % 2 == 0));
      case "table_map_values" -> toOut(table(b).mapValues(v -> num(v.asLong() * 2)));
      case "table_group_by_count" -> toOut(byGroup(b).count(kv(Serdes.Long())));
      case "table_group_by_aggregate" -> toOut(byGroup(b).aggregate(
          () -> 0L,
          (k, v, agg) -> agg + v.get("amount").asLong(),
          (k, v, agg) -> agg - v.get("amount").asLong(),
          kv(Serdes.Long())));
      case "table_group_by_reduce" -> toOut(table(b)
          .groupBy((k, v) -> KeyValue.pair(v.get("group").asText(), v.get("amount")), Grouped.with(STRING, TREE))
          .reduce((agg, v) -> num(agg.asLong() + v.asLong()), (agg, v) -> num(agg.asLong() - v.asLong()), kv(TREE)));
      case "windowed" -> windowed(b, params);
      // stream-table and table-table joins (helper J2): TableJoins.java
      case "stream_table_join", "stream_table_left_join", "stream_table_join_derived", "stream_rekeyed_table_join",
          "stream_rekeyed_table_left_join",
          "table_table_join", "table_table_left_join", "table_table_outer_join", "table_table_join_filter",
          "table_table_join_aggregate", "table_table_join_filtered_input" -> TableJoins.build(b, name);
      // windowed stream-stream joins (helper J1): StreamStreamJoins.java
      case "stream_stream_join" -> StreamStreamJoins.build(b, params);
      // foreign-key table joins (helper J4): ForeignKeyJoins.java
      case "fk_join", "fk_left_join", "fk_join_filtered", "fk_left_join_aggregate" -> ForeignKeyJoins.build(b, name);
      // stream joins with global tables (helper J3): GlobalTableJoins.java
      case "global_table_join" -> GlobalTableJoins.build(b, params);
      default -> throw new IllegalArgumentException("unknown topology " + name);
    }
    return b.build();
  }

  /**
   * A windowed aggregation of "in" grouped by key. params: window (tumbling, hopping, sliding,
   * session), its sizes in ms (size, advance, grace, difference, gap), agg (count, reduce,
   * aggregate) and emit (update, close: EmitStrategy.onWindowClose, suppress: untilWindowCloses).
   *
   * <p>Tumbling and hopping windows emitted on close keep their windows one size longer than Kafka
   * Streams' default retention of size + grace: with the default, a window can expire in the store
   * at the very step of stream time that closes it, and Kafka Streams then never emits its final
   * result (hopping windows lose most of theirs). Streamer emits every closed window once (README:
   * "Differences"); the longer retention makes Kafka Streams do the same, and changes nothing else
   * for these windows (a record's windows are looked up by start, lateness is judged by grace).
   * Sliding and session windows keep the default: their lookups span neighbouring windows, whose
   * retention changes what merges.
   */
  private static void windowed(StreamsBuilder b, JsonNode params) {
    KGroupedStream<String, JsonNode> grouped = byKey(b);
    String window = params.get("window").asText();
    String agg = params.get("agg").asText();
    String emit = params.get("emit").asText();
    Duration grace = ms(params, "grace");
    Duration retention = emit.equals("close") && !window.equals("session") && !window.equals("sliding")
        ? grace.plus(ms(params, "size").multipliedBy(2)) : null;
    if (window.equals("session")) {
      SessionWindowedKStream<String, JsonNode> sessions =
          grouped.windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(params, "gap"), grace));
      if (emit.equals("close")) {
        sessions = sessions.emitStrategy(EmitStrategy.onWindowClose());
      }
      switch (agg) {
        case "count" -> finish(sessions.count(session(Serdes.Long(), retention)), emit);
        case "reduce" -> finish(sessions.reduce(Topologies::sum, session(TREE, retention)), emit);
        case "aggregate" -> finish(sessions.aggregate(() -> "", Topologies::append, (k, left, right) -> left + right,
            session(STRING, retention)), emit);
        default -> throw new IllegalArgumentException("unknown aggregation " + agg);
      }
      return;
    }
    TimeWindowedKStream<String, JsonNode> windows = switch (window) {
      case "tumbling" -> grouped.windowedBy(TimeWindows.ofSizeAndGrace(ms(params, "size"), grace));
      case "hopping" -> grouped.windowedBy(
          TimeWindows.ofSizeAndGrace(ms(params, "size"), grace).advanceBy(ms(params, "advance")));
      case "sliding" -> grouped.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(params, "difference"), grace));
      default -> throw new IllegalArgumentException("unknown window " + window);
    };
    if (emit.equals("close")) {
      windows = windows.emitStrategy(EmitStrategy.onWindowClose());
    }
    switch (agg) {
      case "count" -> finish(windows.count(window(Serdes.Long(), retention)), emit);
      case "reduce" -> finish(windows.reduce(Topologies::sum, window(TREE, retention)), emit);
      case "aggregate" -> finish(windows.aggregate(() -> "", Topologies::append, window(STRING, retention)), emit);
      default -> throw new IllegalArgumentException("unknown aggregation " + agg);
    }
  }

  private static <V> void finish(KTable<Windowed<String>, V> table, String emit) {
    KTable<Windowed<String>, V> result = switch (emit) {
      case "update", "close" -> table;
      case "suppress" -> table.suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()));
      default -> throw new IllegalArgumentException("unknown emit " + emit);
    };
    result.toStream().to(OUT, Produced.with(Json.windowedKey(), Json.<V>out()));
  }

  /** The windowed aggregator: the values in the order they were added (null values as "-"). */
  private static String append(String key, JsonNode value, String agg) {
    return agg + (value == null ? "-" : value.asText()) + ";";
  }

  /** The windowed reducer: a sum in which a null value counts as 0. */
  private static JsonNode sum(JsonNode agg, JsonNode value) {
    return num(agg.asLong() + (value == null ? 0 : value.asLong()));
  }

  private static KStream<String, JsonNode> stream(StreamsBuilder b, String topic) {
    return b.stream(topic, Consumed.with(STRING, TREE));
  }

  private static KTable<String, JsonNode> table(StreamsBuilder b) {
    return b.table(TABLE_IN, Consumed.with(STRING, TREE),
        Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as("table-in-store")
            .withKeySerde(STRING).withValueSerde(TREE));
  }

  private static KGroupedStream<String, JsonNode> byKey(StreamsBuilder b) {
    return stream(b, IN).groupByKey(Grouped.with(STRING, TREE));
  }

  /** Table rows {"group": g, "amount": n} regrouped by g. */
  private static KGroupedTable<String, JsonNode> byGroup(StreamsBuilder b) {
    return table(b).groupBy((k, v) -> KeyValue.pair(v.get("group").asText(), v), Grouped.with(STRING, TREE));
  }

  private static <V> Materialized<String, V, KeyValueStore<Bytes, byte[]>> kv(Serde<V> values) {
    return Materialized.<String, V, KeyValueStore<Bytes, byte[]>>with(STRING, values);
  }

  /** A window store's Materialized; a null retention keeps Kafka Streams' default. */
  private static <V> Materialized<String, V, WindowStore<Bytes, byte[]>> window(Serde<V> values, Duration retention) {
    Materialized<String, V, WindowStore<Bytes, byte[]>> materialized = Materialized.with(STRING, values);
    return retention == null ? materialized : materialized.withRetention(retention);
  }

  private static <V> Materialized<String, V, SessionStore<Bytes, byte[]>> session(Serde<V> values, Duration retention) {
    Materialized<String, V, SessionStore<Bytes, byte[]>> materialized = Materialized.with(STRING, values);
    return retention == null ? materialized : materialized.withRetention(retention);
  }

  private static void toOut(KStream<String, ?> stream) {
    stream.to(OUT, produced());
  }

  private static void toOut(KTable<String, ?> table) {
    table.toStream().to(OUT, produced());
  }

  private static <V> Produced<String, V> produced() {
    return Produced.with(STRING, Json.<V>out());
  }

  private static JsonNode num(long n) {
    return JsonNodeFactory.instance.numberNode(n);
  }

  private static Duration ms(JsonNode params, String field) {
    JsonNode value = params.get(field);
    if (value == null) {
      throw new IllegalArgumentException("windowed topology needs the parameter " + field);
    }
    return Duration.ofMillis(value.asLong());
  }
}
