package streamer.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Stream-table and table-table join topologies (twins in topologies.py, block "stream-table and
 * table-table joins"). The stream is "in", the tables "table-in" and "table-b"; joiners build the
 * JSON array [left, right] (null for a missing side), so every join input shows in the output.
 */
final class TableJoins {
  static final String TABLE_B = "table-b";

  private static final Serde<String> STRING = Serdes.String();
  private static final Serde<JsonNode> TREE = Json.tree();

  private TableJoins() {}

  static void build(StreamsBuilder b, String name) {
    switch (name) {
      case "stream_table_join" -> toOut(stream(b).join(table(b, Topologies.TABLE_IN), TableJoins::pair));
      case "stream_table_left_join" -> toOut(stream(b).leftJoin(table(b, Topologies.TABLE_IN), TableJoins::pair));
      case "stream_table_join_derived" -> toOut(stream(b).leftJoin(
          table(b, Topologies.TABLE_IN).filter((k, v) -> v.asLong() % 2 == 0).mapValues(v -> num(v.asLong() * 10)),
          TableJoins::pair));
      case "stream_rekeyed_table_join" -> toOut(stream(b)
          .selectKey((k, v) -> v == null ? "rnull" : "r" + v.asLong() % 8)
          .join(table(b, Topologies.TABLE_IN), TableJoins::pair, Joined.with(STRING, TREE, TREE)));
      case "stream_rekeyed_table_left_join" -> toOut(stream(b)
          .selectKey((k, v) -> v == null || v.asLong() % 5 == 0 ? null : "r" + v.asLong() % 8)
          .leftJoin(table(b, Topologies.TABLE_IN), TableJoins::pair, Joined.with(STRING, TREE, TREE)));
      case "table_table_join" -> toOut(table(b, Topologies.TABLE_IN).join(table(b, TABLE_B), TableJoins::pair));
      case "table_table_left_join" -> toOut(
          table(b, Topologies.TABLE_IN).leftJoin(table(b, TABLE_B), TableJoins::pair));
      case "table_table_outer_join" -> toOut(
          table(b, Topologies.TABLE_IN).outerJoin(table(b, TABLE_B), TableJoins::pair));
      case "table_table_join_filter" -> toOut(table(b, Topologies.TABLE_IN)
          .outerJoin(table(b, TABLE_B), TableJoins::pair)
          .filter((k, v) -> (v.get(0).isNull() ? 0 : v.get(0).asLong()) % 2 == 0));
      case "table_table_join_aggregate" -> toOut(table(b, Topologies.TABLE_IN)
          .leftJoin(table(b, TABLE_B), (a, c) -> num(a.asLong() * 100 + (c == null ? 99 : c.asLong())))
          .groupBy((k, v) -> KeyValue.pair("g" + v.asLong() % 3, v), Grouped.with(STRING, TREE))
          .reduce((agg, v) -> num(agg.asLong() + v.asLong()), (agg, v) -> num(agg.asLong() - v.asLong()),
              Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(STRING, TREE)));
      case "table_table_join_filtered_input" -> toOut(b.table(Topologies.TABLE_IN, Consumed.with(STRING, TREE))
          .filter((k, v) -> v.asLong() % 2 == 0)
          .join(b.table(TABLE_B, Consumed.with(STRING, TREE)), TableJoins::pair));
      default -> throw new IllegalArgumentException("unknown table join topology " + name);
    }
  }

  /** The joiner of every case: [left, right], a missing side as null. */
  private static JsonNode pair(JsonNode left, JsonNode right) {
    return JsonNodeFactory.instance.arrayNode().add(left).add(right);
  }

  private static KStream<String, JsonNode> stream(StreamsBuilder b) {
    return b.stream(Topologies.IN, Consumed.with(STRING, TREE));
  }

  private static KTable<String, JsonNode> table(StreamsBuilder b, String topic) {
    return b.table(topic, Consumed.with(STRING, TREE),
        Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as(topic + "-store")
            .withKeySerde(STRING).withValueSerde(TREE));
  }

  private static void toOut(KStream<String, JsonNode> stream) {
    stream.to(Topologies.OUT, Produced.with(STRING, Json.<JsonNode>out()));
  }

  private static void toOut(KTable<String, JsonNode> table) {
    toOut(table.toStream());
  }

  private static JsonNode num(long n) {
    return JsonNodeFactory.instance.numberNode(n);
  }
}
