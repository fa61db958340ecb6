"""Local script writer: a documentary script from templates, chosen deterministically per request.

It stands in for Gemini offline and fills exactly the same `Script`: an opening, a development and a
closing, each scene with narration, an image prompt, a motion prompt and a sound cue. The subject and
place are taken from the topic ("Snow leopards of the Himalaya" -> "snow leopards", "the Himalaya"),
the story direction is woven into the development, and the channel's style decides between a nature
and a history register. Every choice comes from a generator seeded by a hash of the request, so the
same request always gives the same script, and a different request a different one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass

from vidgen.channels import Channel
from vidgen.errors import InvalidInputError
from vidgen.models import Cost, Scene, Script
from vidgen.providers.base import ScriptRequest, ScriptResult
from vidgen.providers.settings import ProviderSettings

TITLE_MAX = 100  # YouTube's limit, enforced again by VideoMetadata

STOPWORDS = frozenset(
    "a an the of in on at to for from and or but with without into over under across through by about "
    "as is are was were be been this that these those its their his her our your my we they it how why "
    "what when where who which one two story tale life lives secret secrets hidden journey".split()
)


@dataclass(frozen=True)
class Setting:
    """A kind of place: the words the image painter and sound designer understand, per phase."""

    keywords: tuple[str, ...]  # topic words that select this setting
    views: tuple[str, ...]  # image prompt settings; each names a biome keyword for the painter
    cues: tuple[str, ...]  # sound cues built from the sound designer's vocabulary


NATURE_SETTINGS: dict[str, Setting] = {
    "mountain": Setting(
        ("mountain", "mountains", "himalaya", "himalayas", "alps", "andes", "peak", "peaks", "alpine", "highlands",
         "summit", "ridge", "leopard", "leopards", "ibex", "goat", "goats", "condor", "eagle", "eagles", "yak"),
        ("on a rocky mountain ridge above the clouds", "in a high alpine valley below snowy peaks",
         "on a steep cliff face across the mountains", "beside a glacial lake under the mountain peaks"),
        ("cold wind across the high ridge", "gusts of wind, a distant eagle call and birds",
         "wind over the peaks, a trickle of meltwater stream", "thin mountain wind and a faint drone of stillness"),
    ),
    "forest": Setting(
        ("forest", "forests", "woods", "woodland", "taiga", "pine", "oak", "owl", "owls", "deer", "bear", "bears",
         "wolf", "wolves", "fox", "foxes", "lynx", "moss", "fungi", "tree", "trees"),
        ("deep in an old pine forest", "in a misty forest clearing", "among the tall trees of the forest edge",
         "along a forest stream under the canopy"),
        ("wind through tall trees, distant birds", "birdsong in the forest canopy, a light breeze",
         "a forest brook and soft birdsong", "crickets and insects in the forest at dusk, gentle wind"),
    ),
    "jungle": Setting(
        ("jungle", "jungles", "rainforest", "tropical", "amazon", "borneo", "congo", "orangutan", "orangutans",
         "jaguar", "jaguars", "parrot", "parrots", "gorilla", "gorillas", "monkey", "monkeys", "frog", "frogs"),
        ("under the dense rainforest canopy", "beside a jungle river in tropical heat",
         "in a misty jungle valley", "on a mossy branch high in the tropical canopy"),
        ("insects buzzing and parrots calling in the rainforest", "warm rain on jungle leaves, distant birds",
         "a jungle river, frogs and insects", "cicadas and birdsong in the humid canopy"),
    ),
    "ocean": Setting(
        ("ocean", "oceans", "sea", "seas", "coast", "coastal", "reef", "reefs", "whale", "whales", "dolphin",
         "dolphins", "shark", "sharks", "seal", "seals", "turtle", "turtles", "puffin", "puffins", "penguin",
         "penguins", "island", "islands", "tide", "tides", "shore", "beach", "coral", "kelp"),
        ("on a wild ocean coast with breaking waves", "over the open sea toward a distant island",
         "on a rocky shore where the tide pools gather", "along a quiet beach as the sea falls calm"),
        ("waves on the shore, gulls overhead", "ocean surf and sea wind", "gentle waves lapping at the rocks",
         "distant surf and the cry of gulls"),
    ),
    "desert": Setting(
        ("desert", "deserts", "sahara", "gobi", "namib", "dune", "dunes", "sand", "camel", "camels", "scorpion",
         "scorpions", "oasis", "arid", "canyon", "mesa", "fennec", "meerkat", "meerkats"),
        ("across rolling sand dunes of the desert", "at the edge of a desert oasis",
         "in a dry desert canyon of red rock", "on the crest of a great dune"),
        ("dry wind over the dunes", "desert wind and insects at dusk", "a hot breeze across the sand, a still hush",
         "wind over the canyon and crickets"),
    ),
    "arctic": Setting(
        ("arctic", "antarctic", "antarctica", "polar", "ice", "glacier", "glaciers", "tundra", "iceberg", "icebergs",
         "walrus", "narwhal", "narwhals", "caribou", "reindeer", "snow", "winter"),
        ("across the frozen arctic ice", "beside glaciers and icebergs on a polar sea",
         "on the open tundra under snow", "along the edge of the sea ice"),
        ("a cold wind over the ice", "blizzard wind and distant waves", "wind across the tundra, a lone bird",
         "gentle waves against the ice and a low wind"),
    ),
    "savanna": Setting(
        ("savanna", "savannah", "serengeti", "grassland", "grasslands", "prairie", "plains", "lion", "lions",
         "elephant", "elephants", "zebra", "zebras", "giraffe", "giraffes", "cheetah", "cheetahs", "wildebeest",
         "migration", "steppe", "bison", "acacia", "africa", "african"),
        ("on the open savanna beneath acacia trees", "across golden grassland plains",
         "at a dry savanna waterhole", "along the edge of the grassland as the herds pass"),
        ("wind through tall grass, distant birds", "insects in the grass and a warm breeze",
         "birds at the waterhole, a light wind", "crickets on the plains at dusk"),
    ),
    "river": Setting(
        ("river", "rivers", "lake", "lakes", "wetland", "wetlands", "marsh", "marshes", "delta", "stream",
         "streams", "salmon", "otter", "otters", "beaver", "beavers", "heron", "herons", "crane", "cranes",
         "flamingo", "flamingos", "hippo", "hippos", "crocodile", "crocodiles", "waterfall"),
        ("along a winding river through the valley", "on the still waters of a lake at the forest edge",
         "across a reed-fringed wetland", "beside a waterfall where the river falls"),
        ("a flowing river and birdsong", "water lapping at the reeds, frogs and insects",
         "a rushing waterfall and wind", "a quiet stream, a distant bird call"),
    ),
}

HISTORY_SETTINGS: dict[str, Setting] = {
    "ruins": Setting(
        ("rome", "roman", "romans", "greece", "greek", "greeks", "athens", "sparta", "egypt", "egyptian",
         "pharaoh", "pharaohs", "temple", "temples", "ruins", "empire", "ancient", "pyramid", "pyramids",
         "babylon", "persia", "persian", "maya", "mayan", "inca", "aztec", "pompeii", "troy", "forum"),
        ("among the ruins of a temple with fallen columns", "before the great columns of an ancient forum",
         "across a ruined city of ancient monuments", "at the steps of a temple at the edge of empire"),
        ("wind through the ruins and a distant crowd murmur", "a busy market crowd and distant bells",
         "wind over the stones and a faint drone of tension", "crackling torches and a murmur of voices"),
    ),
    "castle": Setting(
        ("castle", "castles", "medieval", "king", "kings", "queen", "queens", "knight", "knights", "crusade",
         "crusades", "fortress", "siege", "kingdom", "plague", "monastery", "monk", "monks", "cathedral",
         "viking", "vikings", "norman", "normans", "tudor", "tudors", "feudal"),
        ("before a castle on a hill above the valley", "at the walls of a stone fortress",
         "outside a medieval castle on the ridge", "in the shadow of a great keep"),
        ("church bells over the valley and a light wind", "fire crackling in a stone hall, murmur of voices",
         "wind against the castle walls and distant bells", "torches crackling, a crowd murmur in the courtyard"),
    ),
    "city": Setting(
        ("city", "cities", "town", "london", "paris", "venice", "constantinople", "byzantium", "revolution",
         "industrial", "trade", "merchant", "merchants", "harbour", "harbor", "capital", "market", "markets",
         "renaissance", "street", "streets"),
        ("over the rooftops of an old city", "along the crowded streets of the capital",
         "across the skyline of the city", "in the city square on a market day"),
        ("a busy market crowd and distant bells", "murmur of voices in the streets, a light rain",
         "church bells across the city and a breeze", "crowd chatter and crackling street fires"),
    ),
    "battlefield": Setting(
        ("war", "wars", "battle", "battles", "army", "armies", "legion", "legions", "soldier", "soldiers",
         "conquest", "invasion", "general", "generals", "napoleon", "caesar", "alexander", "hannibal",
         "samurai", "cavalry", "rebellion", "revolt"),
        ("on the battlefield as the legions gather", "across a field of banners before the battle",
         "at a war camp on the plain", "over the battlefield after the fighting, in drifting smoke"),
        ("war drums and wind over the battlefield", "marching drums and a distant crowd of soldiers",
         "wind over the field, crackling fires of the camp", "distant thunder and a low drone of tension"),
    ),
    "sea": Setting(
        ("ship", "ships", "fleet", "fleets", "navy", "voyage", "voyages", "explorer", "explorers", "sail",
         "sailors", "pirate", "pirates", "columbus", "magellan", "armada", "galleon", "galleons", "atlantic",
         "pacific", "mediterranean", "sea", "seas", "ocean"),
        ("as a fleet of ships sails across the sea", "at a harbour where the ships wait at anchor",
         "over the open ocean under a stormy sky", "along an unknown coast at the end of the voyage"),
        ("waves against the hull and sea wind", "ocean waves, gulls and creaking sails in the wind",
         "a storm at sea with thunder and rain", "gentle waves in the harbour and distant bells"),
    ),
}

NATURE_LIGHT = {
    "opening": ("at dawn, first light breaking over the horizon", "in soft morning mist, golden sunrise light"),
    "development": ("in warm golden-hour light", "under bright midday sun", "under a stormy sky with rain",
                    "in soft afternoon light through drifting mist"),
    "closing": ("at sunset, amber evening light", "at dusk under a moonlit night sky with stars"),
}
HISTORY_LIGHT = {
    "opening": ("at dawn, pale light over the horizon", "in the morning mist"),
    "development": ("in warm golden candle-lit tones", "under a stormy sky", "in the harsh light of midday",
                    "in drifting smoke and haze"),
    "closing": ("at sunset, amber evening light", "at night under the moon"),
}

MOTIONS = {
    "opening": ("slow push-in toward the horizon", "slow pull-out to reveal the landscape"),
    "development": ("pan left across the scene", "pan right following the movement", "tilt up toward the sky",
                    "slow push-in on the subject", "gentle drift across the view"),
    "closing": ("slow pull-out as the light fades", "tilt up to the sky as the scene ends"),
}

# Narration templates. {subject} / {topic} / {place} come from the topic; {direction} from the story
# direction. Phrased so they read correctly for singular and plural subjects alike.
NATURE_LINES = {
    "opening": (
        "This is the story of {topic}.",
        "Few places on Earth hold a story quite like {topic}.",
        "At first light, {place} is quiet, and the day ahead belongs to {subject}.",
        "We begin where the light first touches {place}.",
        "To understand {subject}, we have to start with the land itself.",
        "Long before anyone came to watch, the rhythm of {place} was already set.",
        "Here, in {place}, every day is a test of patience and strength.",
        "There are few places left where life follows its own ancient rules.",
    ),
    "development": (
        "Every season here brings a new test, and survival depends on timing.",
        "Look closer, and the life of {subject} follows a pattern older than memory.",
        "Nothing in {place} is wasted; each moment feeds the next.",
        "For {subject}, the margin between plenty and hunger is thin.",
        "The weather turns quickly here, and every creature must read the signs.",
        "In the world of {subject}, patience is the rule.",
        "Each journey across {place} is a gamble with the land itself.",
        "The young learn fast, because the land does not forgive mistakes.",
        "Every sound carries a meaning here, from the call of a bird to the silence before a storm.",
        "Food is never certain, and every hunt or harvest has to count.",
        "The land changes with the light, and so does everything that lives on it.",
        "Small moments decide everything: a shift in the wind, a sound in the distance.",
    ),
    "closing": (
        "As the light fades over {place}, the story of {subject} goes on.",
        "What remains is a reminder that the story of {topic} is still being written.",
        "And so we leave {place} as we found it: wild, patient and unfinished.",
        "Tomorrow the cycle begins again, as it has for thousands of years.",
        "If we are careful, this story will still be told long after us.",
        "The light goes, the land rests, and {place} keeps its secrets for another day.",
        "Some stories never really end; they simply wait for the next dawn.",
    ),
}
HISTORY_LINES = {
    "opening": (
        "This is the story of {topic}.",
        "Few chapters of the past are as remarkable as {topic}.",
        "To understand {subject}, we have to go back to where it began, in {place}.",
        "Long before the chronicles were written, {place} was already a crossroads of ambition.",
        "History rarely announces itself, and {topic} was no exception.",
        "The world of {place} was about to change, though few could see it coming.",
        "Every age believes itself permanent, and this one was no different.",
    ),
    "development": (
        "Power here was never given; it was taken, and it had to be defended.",
        "The records that survive tell only part of the story of {subject}.",
        "In {place}, every alliance carried the seed of its own betrayal.",
        "Ordinary people paid the price for decisions made far above them.",
        "Trade, faith and fear pulled {place} in different directions.",
        "Each victory bought time, and each defeat changed the map.",
        "The chroniclers disagree on the details, but the outcome is not in doubt.",
        "Behind every decision stood people whose names the records never kept.",
        "Rumour travelled faster than any army, and fear travelled faster still.",
        "Walls, treaties and oaths were only as strong as the people who kept them.",
        "For a while, it seemed that nothing could change the course of events.",
    ),
    "closing": (
        "When it was over, the echoes of {topic} reached far beyond {place}.",
        "What remains are ruins, records and the questions they leave behind.",
        "And so {topic} passed into memory, and memory into history.",
        "Centuries later, we are still living with what happened here.",
        "The story of {topic} is finished, but its lessons are not.",
        "Empires fall, cities change their names, and still the stories remain.",
        "In the end, what survives is not power but memory.",
    ),
}
# Short fillers used when a scene's narration still falls short of its word budget.
FILLERS = (
    "The land keeps its own time.",
    "Every detail matters here.",
    "Nothing here stands still for long.",
    "The silence says as much as any sound.",
    "It is a fragile balance.",
)
HISTORY_FILLERS = (
    "The stones remember what the books forget.",
    "Every detail was a matter of survival.",
    "Nothing here stood still for long.",
    "It was a fragile balance.",
)

HISTORY_STYLE_WORDS = ("historical", "history", "parchment", "ancient", "medieval", "museum", "chronicle", "era")


def _seeded(request: ScriptRequest) -> random.Random:
    digest = hashlib.sha256(json.dumps(request.model_dump(), sort_keys=True).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z'\-]*", text.lower())


COMMON_LEADS = frozenset(
    "the a an rise fall age end last first great lost hidden secret secrets life lives story birth death "
    "return journey migration war wars battle battles siege empire kingdom reign legend legends myth "
    "ancient wild young old golden forgotten mighty silent deep high little big".split()
)


# Setting keywords that are names and keep their capital at the start of a topic.
PROPER_NAMES = frozenset(
    "himalaya himalayas alps andes amazon borneo congo sahara gobi namib serengeti africa african antarctica "
    "rome roman romans greece greek greeks athens sparta egypt egyptian babylon persia persian maya mayan inca "
    "aztec pompeii troy viking vikings norman normans tudor tudors london paris venice constantinople byzantium "
    "napoleon caesar alexander hannibal columbus magellan atlantic pacific mediterranean".split()
)


def _lower_lead(text: str, known: frozenset[str]) -> str:
    """Lower-case the first letter when the first word is a common word, so the phrase can sit
    mid-sentence ("the story of snow leopards"); names ("Rome", "Hannibal") keep their capital."""
    first = text.split()[0] if text.split() else ""
    if first.lower() in COMMON_LEADS or first.lower() in known:
        return first.lower() + text[len(first):]
    return text


def split_topic(topic: str, *, fallback_place: str = "the wild") -> tuple[str, str, str]:
    """(topic phrase, subject, place) for use mid-sentence: "Snow leopards of the Himalaya" ->
    ("snow leopards of the Himalaya", "snow leopards", "the Himalaya"). Without a place phrase the
    subject is the whole topic and the place is `fallback_place`."""
    text = " ".join(topic.strip().rstrip(".!?").split())
    known = frozenset(
        w for table in (NATURE_SETTINGS, HISTORY_SETTINGS) for s in table.values() for w in s.keywords
    ) - PROPER_NAMES
    m = re.match(r"(?i)^(.+?)\s+(?:of|in|on|across|along|beneath|under|through|at)\s+(.+)$", text)
    if m:
        subject, place = m.group(1), m.group(2)
        if not re.match(r"(?i)^(the|a|an)\s", place) and place[:1].islower():
            place = "the " + place
    else:
        subject, place = text, fallback_place
    return _lower_lead(text, known), _lower_lead(subject, known), place


def _genre(request: ScriptRequest) -> str:
    words = _words(f"{request.style_preamble} {request.channel_name}")
    return "history" if any(w in HISTORY_STYLE_WORDS for w in words) else "nature"


def _pick_setting(settings: dict[str, Setting], text_words: list[str], rng: random.Random) -> str:
    scores = {name: sum(w in s.keywords for w in text_words) for name, s in settings.items()}
    best = max(scores.values())
    if best == 0:
        return rng.choice(sorted(settings))
    return next(name for name, score in scores.items() if score == best)


# How a story direction's clauses become narration: a leading instruction verb decides the phase
# and the sentence; the rest of the clause is kept verbatim.
DIRECTION_FORMS: tuple[tuple[str, str, str], ...] = (
    (r"(?:open|start|begin)\s+(?:with|on|at)", "opening", "It begins with {x}."),
    (r"(?:end|close|finish|conclude)\s+(?:with|on|at)", "closing", "In the end, this is a story about {x}."),
    (r"tell\s+(?:it|the\s+story)\s+(?:from|through)", "development", "We watch it unfold from {x}."),
    (r"(?:follow|track|trace|accompany)", "development", "Our story follows {x}."),
    (r"(?:show|reveal|explore|describe|explain|highlight|feature|focus\s+on|contrast|include)", "development",
     "Now our attention turns to {x}."),
)


def direction_sentences(direction: str) -> list[tuple[str, str]]:
    """The story direction as (phase, sentence) pairs: "Follow one calf to the river; end on hope"
    -> [("development", "Our story follows one calf to the river."), ("closing", "In the end, this is a
    story about hope.")]. A clause without an instruction verb is offered as an image: "Picture it: ..."."""
    pairs: list[tuple[str, str]] = []
    for part in re.split(r"[.;!?\n]+|,\s*(?:and\s+)?then\s+|\s+then\s+", direction):
        clause = " ".join(part.split()).strip(" ,:-")
        if len(clause.split()) < 2:
            continue
        for pattern, phase, form in DIRECTION_FORMS:
            m = re.match(rf"(?i)(?:and\s+)?{pattern}\s+(.+)$", clause)
            if m:
                pairs.append((phase, form.format(x=m.group(1).rstrip(" ,"))))
                break
        else:
            body = clause[0].lower() + clause[1:] if clause[:1].isupper() and not clause[1:2].isupper() else clause
            pairs.append(("development", f"Picture it: {body}."))
    return pairs


def _phases(scenes: int) -> list[str]:
    if scenes == 1:
        return ["opening"]
    if scenes == 2:
        return ["opening", "closing"]
    return ["opening"] + ["development"] * (scenes - 2) + ["closing"]


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Narrator:
    """Builds each scene's narration to a word budget without repeating a sentence in the script;
    the story direction's sentences lead the scenes of their phase."""

    def __init__(self, lines: dict[str, tuple[str, ...]], fillers: tuple[str, ...], fields: dict[str, str],
                 directions: list[tuple[str, str]], rng: random.Random):
        self.lines = lines
        self.fillers = fillers
        self.fields = fields
        self.directions = list(directions)
        self.rng = rng
        self.used: set[str] = set()

    def _lead(self, phase: str, remaining_scenes_in_phase: int) -> list[str]:
        mine = [d for d in self.directions if d[0] == phase]
        if not mine:
            return []
        # Spread a phase's direction sentences over its scenes; the last scene takes what is left.
        take = mine if remaining_scenes_in_phase <= 1 else mine[: max(1, len(mine) // remaining_scenes_in_phase)]
        for d in take:
            self.directions.remove(d)
        return [sentence for _, sentence in take]

    def scene(self, phase: str, budget: int, remaining_scenes_in_phase: int) -> str:
        sentences = self._lead(phase, remaining_scenes_in_phase)
        count = sum(len(x.split()) for x in sentences)
        fresh = [t for t in self.lines[phase] if t not in self.used]
        worn = [t for t in self.lines[phase] if t in self.used]
        self.rng.shuffle(fresh)
        self.rng.shuffle(worn)
        pool = fresh + worn  # long films reuse sentences, but never within one scene
        for template in pool:
            if count >= budget * 0.8:
                break
            sentence = _sentence_case(template.format(**self.fields))
            n = len(sentence.split())
            if count and count + n > budget * 1.35:
                continue
            if phase == "closing":
                sentences.insert(0, sentence)  # the direction's ending stays the film's last word
            else:
                sentences.append(sentence)
            self.used.add(template)
            count += n
        fillers = [f for f in self.fillers if f not in self.used]
        self.rng.shuffle(fillers)
        for filler in fillers:
            if count >= budget * 0.8:
                break
            if count and count + len(filler.split()) > budget * 1.35:
                continue
            sentences.insert(len(sentences) - 1 if phase == "closing" and sentences else len(sentences), filler)
            self.used.add(filler)
            count += len(filler.split())
        if not sentences:
            sentences.append(_sentence_case(f"This is the story of {self.fields['topic']}."))
        return " ".join(sentences)


def _title(request: ScriptRequest) -> str:
    title = " ".join((request.title or request.topic).split())
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rsplit(" ", 1)[0] + "…"
    return title


def _tags(request: ScriptRequest, genre: str, setting: str) -> list[str]:
    tags: list[str] = []
    for w in _words(f"{request.topic} {request.title}"):
        w = w.strip("'-")
        if len(w) > 2 and w not in STOPWORDS and w not in tags:
            tags.append(w)
    topic_tag = " ".join(request.topic.lower().split())
    extra = [topic_tag, setting, "documentary", "nature" if genre == "nature" else "history",
             "wildlife" if genre == "nature" else "history documentary"]
    for t in extra:
        if t and t not in tags and len(t) <= 60:
            tags.append(t)
    return tags[:15]


class LocalScriptWriter:
    """ScriptWriter from templates; free, offline, deterministic per request.

    It honours `ScriptRequest.previous_problems` by construction: every script it writes has exactly
    `request.scenes` scenes, indexed from 0, each with narration, so a request that states problems
    with an earlier answer gets a script free of them (the same one: the problems are not part of
    the seed, as they say nothing about the film).
    """

    name = "local"

    def write(self, request: ScriptRequest) -> ScriptResult:
        if not request.topic.strip():
            raise InvalidInputError("the topic is empty; a script needs a topic", provider=self.name)
        rng = _seeded(request)
        genre = _genre(request)
        settings = HISTORY_SETTINGS if genre == "history" else NATURE_SETTINGS
        lights = HISTORY_LIGHT if genre == "history" else NATURE_LIGHT
        lines = HISTORY_LINES if genre == "history" else NATURE_LINES
        fillers = HISTORY_FILLERS if genre == "history" else FILLERS

        topic_text, subject, place = split_topic(
            request.topic, fallback_place="the old world" if genre == "history" else "the wild"
        )
        text_words = _words(f"{request.topic} {request.story_direction} {request.title}")
        main = _pick_setting(settings, text_words, rng)
        others = [name for name in sorted(settings) if name != main]
        rng.shuffle(others)
        phases = _phases(request.scenes)
        directions = direction_sentences(request.story_direction)
        if "development" not in phases:  # a one- or two-scene film says its middle in the opening
            directions = [("opening" if p == "development" else p, x) for p, x in directions]
        if "closing" not in phases:
            directions = [("opening", x) for _, x in directions]
        narrator = _Narrator(lines, fillers, {"topic": topic_text, "subject": subject, "place": place},
                             directions, rng)
        image_subject = self._image_subject(genre, subject, place, request.topic)

        scenes: list[Scene] = []
        views = list(settings[main].views)
        cues = list(settings[main].cues)
        rng.shuffle(views)
        rng.shuffle(cues)
        for index, phase in enumerate(phases):
            # Most scenes stay in the main setting; one in four visits a neighbouring one for variety.
            setting_name = main if index % 4 != 2 or not others else others[(index // 4) % len(others)]
            setting = settings[setting_name]
            view = views[index % len(views)] if setting_name == main else rng.choice(setting.views)
            cue = cues[index % len(cues)] if setting_name == main else rng.choice(setting.cues)
            light = rng.choice(lights[phase])
            motion = rng.choice(MOTIONS[phase])
            preamble = request.style_preamble.strip().rstrip(".")
            shot = f"{image_subject}, {view}, {light}"
            image_prompt = f"{preamble}. {shot}" if preamble else shot
            scenes.append(
                Scene(
                    index=index,
                    narration=narrator.scene(phase, request.words_per_scene, phases[index:].count(phase)),
                    image_prompt=image_prompt,
                    motion_prompt=motion,
                    sound_cue=cue,
                )
            )

        title = _title(request)
        description = self._description(request, title, topic_text, scenes)
        return ScriptResult(
            script=Script(title=title, description=description, tags=_tags(request, genre, main), scenes=scenes),
            cost=Cost(usd=0.0, units=1, unit="script"),
        )

    @staticmethod
    def _image_subject(genre: str, subject: str, place: str, topic: str) -> str:
        """What the picture shows: the animal or thing for nature films; for history the place (an
        event such as "the fall" cannot be painted, Constantinople can)."""
        if genre == "history":
            return _sentence_case(place if place != "the old world" else " ".join(topic.split()))
        return _sentence_case(subject)

    @staticmethod
    def _description(request: ScriptRequest, title: str, topic_text: str, scenes: list[Scene]) -> str:
        lead = f"{title}: a short documentary about {topic_text}."
        direction = " ".join(request.story_direction.split())
        body = scenes[0].narration
        parts = [lead, body]
        if direction:
            parts.append(f"In this film: {direction.rstrip('.')}.")
        parts.append(f"From {request.channel_name}. Narration, pictures and sound are synthetic media.")
        return "\n\n".join(parts)[:5000]


def create_script(settings: ProviderSettings, channel: Channel) -> LocalScriptWriter:
    return LocalScriptWriter()
