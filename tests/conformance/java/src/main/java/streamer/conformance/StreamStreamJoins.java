package streamer.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.time.Duration;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;

/**
 * Windowed stream-stream join topologies (twins in topologies.py, block "stream-stream joins").
 * Left input "in-a", right input "in-b" (a self-join reads "in" on both sides); the joiner builds
 * the JSON array [left, right], null for a missing side. Params: "kind" (inner, left, outer),
 * "difference" and "grace" (ms), optional "before" and "after" (ms), "self", "rekey" (the left
 * side re-keyed to its own key, which makes it go through a repartition topic).
 */
final class StreamStreamJoins {
  private static final Serde<String> STRING = Serdes.String();
  private static final Serde<JsonNode> TREE = Json.tree();

  private StreamStreamJoins() {}

  static void build(StreamsBuilder b, JsonNode params) {
    JoinWindows windows = JoinWindows.ofTimeDifferenceAndGrace(
        Duration.ofMillis(params.get("difference").asLong()), Duration.ofMillis(params.get("grace").asLong()));
    if (params.has("before")) {
      windows = windows.before(Duration.ofMillis(params.get("before").asLong()));
    }
    if (params.has("after")) {
      windows = windows.after(Duration.ofMillis(params.get("after").asLong()));
    }
    boolean self = params.path("self").asBoolean(false);
    KStream<String, JsonNode> left = b.stream(self ? Topologies.IN : "in-a", Consumed.with(STRING, TREE));
    KStream<String, JsonNode> right = self ? left : b.stream("in-b", Consumed.with(STRING, TREE));
    if (params.path("rekey").asBoolean(false)) {
      left = left.selectKey((k, v) -> k);
    }
    StreamJoined<String, JsonNode, JsonNode> joined = StreamJoined.with(STRING, TREE, TREE);
    KStream<String, JsonNode> result = switch (params.get("kind").asText()) {
      case "inner" -> left.join(right, StreamStreamJoins::pair, windows, joined);
      case "left" -> left.leftJoin(right, StreamStreamJoins::pair, windows, joined);
      case "outer" -> left.outerJoin(right, StreamStreamJoins::pair, windows, joined);
      default -> throw new IllegalArgumentException("unknown join kind " + params.get("kind"));
    };
    result.to(Topologies.OUT, Produced.with(STRING, Json.out()));
  }

  /** The joiner of every case: [left, right], a missing side as null. */
  private static JsonNode pair(JsonNode left, JsonNode right) {
    return JsonNodeFactory.instance.arrayNode().add(left).add(right);
  }
}
