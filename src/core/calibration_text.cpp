// The built-in calibration text (kv_profile.h): in core so that every front end (the CLI's
// runner, the Python package's transformers calibration) measures on the same words.
#include "turboquant/kv_profile.h"

namespace tq {

const char* calibration_text() {
  return "The ferry left the harbour a little after seven, when the fog had begun to lift from the water. "
         "Most of the passengers stayed inside, but an old man in a grey coat stood at the rail and watched "
         "the town grow small behind them. He had made the crossing every spring for forty years.\n\n"
         "\"Are you going to the island for the festival?\" asked a girl who had come to stand beside him.\n"
         "\"No,\" he said, smiling. \"I am going to see whether my brother has finally fixed his roof.\"\n\n"
         "To install the package, download the archive, unpack it into a new directory and run the setup "
         "script. The script checks that version 3.2 or later of the compiler is present, builds the library "
         "in release mode and runs the test suite, which takes about two minutes on a laptop. If a test fails, "
         "the log file lists the name of the test, the expected value and the value that was measured.\n\n"
         "In 1887 the city counted 412,000 inhabitants; by 1913 the number had nearly doubled, and the new "
         "railway station handled more than 90 trains a day. Prices rose as well: a loaf of bread that cost "
         "four cents at the start of the period cost eleven at its end.\n\n"
         "Water boils at a lower temperature on a mountain because the air pressure is lower there. A cook "
         "who follows a recipe written at sea level may find that beans need much longer to soften, and that "
         "cakes rise too quickly and then fall. Small changes to the amount of sugar and baking powder help.\n\n"
         "Dear Margaret, thank you for your letter and for the photographs of the garden. The roses look "
         "wonderful this year. We are all well here, although the children have had colds, and James is "
         "busy with the harvest. Write again soon and tell me when you plan to visit.";
}

}  // namespace tq
