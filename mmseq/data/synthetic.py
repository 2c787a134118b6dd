"""A synthetic review data set with latent topics: the embedded default data of the demo.

Generative story (all draws from one ``numpy.random.Generator`` seeded by ``cfg.seed``):

1. Each item has a primary topic (topics spread evenly over items) and a topic mixture
   ``phi_i = purity * onehot(primary_i) + (1 - purity) * Dirichlet(1)``, plus a log-normal
   popularity.
2. Each user has a taste ``theta_u ~ Dirichlet(user_concentration)`` (small = few topics).
3. A user picks ``n_u = min_interactions + Poisson(mean - min)`` distinct items with probability
   proportional to ``(theta_u . phi_i) ** taste_sharpness * popularity_i`` (Gumbel top-k), so
   collaborative signal exists beyond popularity.
4. The user's items are ordered in topic blocks (``sequence_coherence``), timestamps increase by
   random gaps of at least an hour, and the rating grows with the taste match plus noise.
5. The review holds 2-4 sentences: each is generic with probability ``generic_sentence_prob``, else
   it is drawn from a template of a topic sampled from ``phi_i``, filled with that topic's nouns and
   positive (rating >= 3) or negative adjectives. Sentences of one topic share vocabulary, so a
   sentence encoder plus clustering can recover the topics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError

# One block per topic: nouns, positive ("good") and negative ("bad") adjectives (";"-separated; a
# key may repeat to continue a list), and sentence templates ("say") with {noun} and {adj} slots.
_TOPIC_TABLE = """
strings
    nouns: string set; set of strings; pack of nickel strings; bronze string set; bass string set
    good: bright and warm; smooth under the fingers; resonant; long lasting; crisp and balanced
    bad: dull after a week; harsh and metallic; rough on the fingers; quick to rust
    bad: prone to snapping
    say: The {noun} sounds {adj} on my acoustic guitar.
    say: After restringing my guitar, the {noun} felt {adj}.
    say: This {noun} is {adj} when I strum open chords.
    say: I change strings often, and this {noun} is {adj}.
    say: On my electric guitar the {noun} sounds {adj} across every fret.
cables
    nouns: instrument cable; patch cable; guitar cable; XLR cable; quarter inch cord
    good: quiet without any hum; sturdy and well shielded; flexible and tangle free
    good: solid at the plugs
    bad: noisy and full of crackle; loose at the jack; thin and poorly shielded
    bad: broken at the connector
    say: The {noun} is {adj} when plugged into my amp.
    say: I run this {noun} from my pedalboard and it is {adj}.
    say: For live gigs this {noun} is {adj}.
    say: Between the mixer and the speaker, the {noun} is {adj}.
tuners
    nouns: clip-on tuner; chromatic tuner; headstock tuner; tuner pedal; digital tuner
    good: accurate and fast; easy to read on a dark stage; quick to lock onto each note
    good: precise to the cent
    bad: slow to respond; hard to read in sunlight; jumpy between notes
    bad: inaccurate on the low strings
    say: The {noun} is {adj} when I tune my guitar.
    say: Clipped on the headstock, the {noun} is {adj}.
    say: Tuning the low E string, the {noun} was {adj}.
    say: For tuning ukulele and violin the {noun} is {adj}.
pedals
    nouns: distortion pedal; overdrive pedal; delay pedal; reverb pedal; chorus pedal
    good: full of rich tone; warm and dynamic; quiet with true bypass; versatile with useful knobs
    bad: noisy with a loud hiss; thin and fizzy; cheap with flimsy knobs; prone to cutting out
    say: The {noun} is {adj} in front of my tube amp.
    say: With the gain knob up, this {noun} is {adj}.
    say: On my pedalboard the {noun} is {adj}.
    say: Stomping on the {noun} during a solo, it was {adj}.
microphones
    nouns: condenser microphone; dynamic mic; vocal microphone; USB microphone; studio mic
    good: clear for vocals; crisp with little background noise; great for recording podcasts
    good: warm on spoken word
    bad: muddy on vocals; full of background noise; tinny when recording; prone to feedback
    say: Recording vocals, the {noun} is {adj}.
    say: In my home studio the {noun} is {adj}.
    say: For singing and podcasts this {noun} is {adj}.
    say: Plugged into the audio interface, the {noun} sounds {adj}.
amplifiers
    nouns: practice amp; tube amplifier; bass amp; combo amp; headphone amp
    good: loud with clean headroom; warm and punchy; great for practice at home
    good: full of crunchy tone
    bad: weak at low volume; buzzy and harsh; distorted even on the clean channel
    bad: too quiet for band practice
    say: Turned up, the {noun} is {adj}.
    say: The speaker in this {noun} is {adj}.
    say: For jamming with the band the {noun} is {adj}.
    say: The clean channel of the {noun} is {adj}.
drums
    nouns: pair of drumsticks; snare drum; practice pad; crash cymbal; drum throne
    good: well balanced in the hand; loud and responsive; durable after heavy hitting
    good: great for rudiment practice
    bad: splintered after a week; dead and unresponsive; wobbly during long sessions
    bad: cracked after heavy hitting
    say: Playing drum fills, the {noun} is {adj}.
    say: For my drum kit the {noun} is {adj}.
    say: During rehearsal with the drummer, the {noun} was {adj}.
    say: The {noun} is {adj} for rock beats and grooves.
keyboards
    nouns: digital piano; MIDI keyboard; keyboard stand; sustain pedal; synthesizer
    good: responsive with weighted keys; great for learning piano; easy to connect to my laptop
    good: rich with realistic piano sounds
    bad: clunky with stiff keys; laggy over USB MIDI; wobbly when I play
    bad: thin with fake piano sounds
    say: Practicing piano scales, the {noun} is {adj}.
    say: For piano lessons the {noun} is {adj}.
    say: In my recording software the {noun} is {adj}.
    say: Playing chords with both hands, the {noun} is {adj}.
cases
    nouns: guitar strap; gig bag; hard case; guitar stand; padded case
    good: well padded and comfortable; sturdy for travel; strong with solid stitching
    good: secure and snug
    bad: flimsy with weak stitching; uncomfortable on my shoulder; too small for my guitar
    bad: loose and slipping
    say: Carrying my guitar to gigs, the {noun} is {adj}.
    say: For travel the {noun} is {adj}.
    say: With my heavy bass the {noun} is {adj}.
    say: Zipped up and on my back, the {noun} is {adj}.
ukuleles
    nouns: soprano ukulele; concert ukulele; tenor ukulele; ukulele kit
    good: sweet and in tune; easy for beginners; beautifully finished; bright with a cheerful tone
    bad: out of tune up the neck; buzzing on the frets; cheaply finished; hard to keep in tune
    say: Strumming island songs, the {noun} is {adj}.
    say: For a first ukulele the {noun} is {adj}.
    say: The {noun} is {adj} for my daughter's lessons.
    say: Playing by the campfire, the {noun} was {adj}.
"""


class Topic(NamedTuple):
    """The vocabulary of one synthetic topic."""

    name: str
    nouns: tuple[str, ...]
    good: tuple[str, ...]
    bad: tuple[str, ...]
    templates: tuple[str, ...]


def _parse_topics(table: str) -> tuple[Topic, ...]:
    blocks: list[dict[str, list[str]]] = []
    for line in table.strip().splitlines():
        if not line.startswith(" "):
            blocks.append({"name": [line.strip()], "nouns": [], "good": [], "bad": [], "say": []})
            continue
        key, _, value = line.strip().partition(": ")
        values = [value] if key == "say" else [v.strip() for v in value.split(";")]
        blocks[-1][key].extend(values)
    return tuple(
        Topic(b["name"][0], tuple(b["nouns"]), tuple(b["good"]), tuple(b["bad"]), tuple(b["say"]))
        for b in blocks
    )


TOPICS = _parse_topics(_TOPIC_TABLE)
GENERIC_POSITIVE = (
    "Shipping was fast and the box arrived on time.",
    "I would buy this again.",
    "Good value for the price.",
    "It does exactly what the description says.",
    "My order came well packaged.",
    "I bought this as a gift and it was a hit.",
)
GENERIC_NEGATIVE = (
    "I would not buy this again.",
    "Not worth the money.",
    "The package arrived late and dented.",
    "It does not match the description.",
    "I asked for a refund.",
    "Customer service never replied.",
)
SUMMARY_WORDS = ("Disappointing", "Not great", "Okay", "Good", "Excellent")


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and knobs of :func:`generate_synthetic` (see the module docstring)."""

    num_users: int = 400  # users
    num_items: int = 300  # items
    num_topics: int = 8  # latent topics, at most len(TOPICS) (10)
    mean_interactions: float = 12.0  # mean distinct items per user
    min_interactions: int = 5  # fewest items per user
    user_concentration: float = 0.3  # Dirichlet alpha of user tastes (smaller = more focused)
    item_purity: float = 0.8  # weight of an item's primary topic in its mixture
    taste_sharpness: float = 2.0  # exponent of the taste match when users pick items
    popularity_sigma: float = 0.5  # log-normal spread of item popularity
    sequence_coherence: float = 0.7  # 0 = random order, 1 = strict topic blocks
    rating_noise: float = 0.6  # std of rating noise (stars)
    sentences_min: int = 2  # fewest sentences per review
    sentences_max: int = 4  # most sentences per review
    generic_sentence_prob: float = 0.15  # share of topic-free sentences
    start_time: int = 1_500_000_000  # earliest user start (Unix seconds)
    mean_gap_seconds: int = 3 * 86_400  # mean extra gap between a user's interactions (seconds)
    seed: int = 0  # seed of the numpy Generator
    with_text: bool = True  # generate review and summary text

    def __post_init__(self) -> None:
        checks = [
            (self.num_users >= 1, "num_users", ">= 1"),
            (2 <= self.num_topics <= len(TOPICS), "num_topics", f"in [2, {len(TOPICS)}]"),
            (self.num_items >= self.num_topics, "num_items", ">= num_topics"),
            (1 <= self.min_interactions <= self.num_items, "min_interactions", "in [1, num_items]"),
            (
                self.mean_interactions >= self.min_interactions,
                "mean_interactions",
                ">= min_interactions",
            ),
            (self.user_concentration > 0, "user_concentration", "> 0"),
            (0 <= self.item_purity <= 1, "item_purity", "in [0, 1]"),
            (0 <= self.sequence_coherence <= 1, "sequence_coherence", "in [0, 1]"),
            (
                1 <= self.sentences_min <= self.sentences_max,
                "sentences_min",
                "in [1, sentences_max]",
            ),
            (0 <= self.generic_sentence_prob <= 1, "generic_sentence_prob", "in [0, 1]"),
            (
                self.start_time >= 0 and self.mean_gap_seconds >= 0,
                "start_time",
                ">= 0 (and the gap)",
            ),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ConfigError(
                    f"Expected SyntheticConfig.{name} {expected} (got {getattr(self, name)!r})"
                )


@dataclass(frozen=True, eq=False)
class SyntheticLatents:
    """The hidden structure behind a synthetic data set (for tests and diagnostics).

    Attributes:
        user_taste: (num_users, K) rows sum to 1.
        item_mixture: (num_items, K) rows sum to 1.
        item_topic: (num_items,) primary topic of each item.
        item_popularity: (num_items,) positive popularity factor.
    """

    user_taste: np.ndarray
    item_mixture: np.ndarray
    item_topic: np.ndarray
    item_popularity: np.ndarray


def generate_synthetic(cfg: SyntheticConfig | None = None) -> Interactions:
    """The synthetic :class:`Interactions` of ``cfg`` (default config if None); deterministic."""
    return generate_synthetic_with_latents(cfg or SyntheticConfig())[0]


def generate_synthetic_with_latents(cfg: SyntheticConfig) -> tuple[Interactions, SyntheticLatents]:
    """Like :func:`generate_synthetic`, also returning the latent factors."""
    rng = np.random.default_rng(cfg.seed)
    n_users, n_items, k = cfg.num_users, cfg.num_items, cfg.num_topics
    item_topic = rng.permutation(np.arange(n_items) % k)
    mixture = cfg.item_purity * np.eye(k)[item_topic] + (1 - cfg.item_purity) * rng.dirichlet(
        np.ones(k), size=n_items
    )  # (I, K)
    popularity = rng.lognormal(0.0, cfg.popularity_sigma, size=n_items)
    taste = rng.dirichlet(np.full(k, cfg.user_concentration), size=n_users)  # (U, K)
    match = taste @ mixture.T  # (U, I)

    counts = cfg.min_interactions + rng.poisson(
        cfg.mean_interactions - cfg.min_interactions, n_users
    )
    counts = np.minimum(counts, n_items)
    gumbel = -np.log(-np.log(rng.random((n_users, n_items))))
    keys = cfg.taste_sharpness * np.log(match + 1e-12) + np.log(popularity) + gumbel
    ranked = np.argsort(-keys, axis=1)  # (U, I) best first
    chosen = np.arange(n_items)[None, :] < counts[:, None]
    user = np.repeat(np.arange(n_users), counts)
    item = ranked[chosen]  # row-major: grouped by user

    # Order each user's items in topic blocks (random block order), mixed with noise.
    block_rank = rng.random((n_users, k))
    order_key = cfg.sequence_coherence * block_rank[user, item_topic[item]] + (
        1 - cfg.sequence_coherence
    ) * rng.random(len(user))
    order = np.lexsort((order_key, user))
    user, item = user[order], item[order]

    starts = cfg.start_time + rng.integers(0, 365 * 86_400, n_users)
    gaps = 3_600 + rng.exponential(cfg.mean_gap_seconds, len(user)).astype(np.int64)
    csum = np.cumsum(gaps)
    first_row = np.cumsum(counts) - counts
    timestamp = starts[user] + csum - (csum[first_row] - gaps[first_row])[user]

    pair_match = match[user, item]
    z = (pair_match - pair_match.mean()) / (pair_match.std() + 1e-12)
    rating = np.clip(
        np.rint(3.8 + 0.9 * z + cfg.rating_noise * rng.standard_normal(len(user))), 1, 5
    )

    review = summary = None
    if cfg.with_text:
        review, summary = _write_reviews(rng, cfg, item, rating, mixture, item_topic)
    data = Interactions(
        user=user.astype(np.int64),
        item=item.astype(np.int64),
        rating=rating.astype(np.float32),
        timestamp=timestamp.astype(np.int64),
        user_ids=np.array([f"u{u:05d}" for u in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i:05d}" for i in range(n_items)], dtype=object),
        review=review,
        summary=summary,
        meta={
            "source": "synthetic",
            "format": "synthetic",
            "config": dataclasses.asdict(cfg),
            "topic_names": [t[0] for t in TOPICS[:k]],
            "rows_read": int(len(user)),
            "skipped": {},
            "has_rating": True,
            "has_time": True,
            "has_text": cfg.with_text,
        },
    )
    used = np.unique(item)
    if len(used) < n_items:  # an item nobody picked: drop it so ids stay dense
        data = data.compact()
        mixture, item_topic, popularity = mixture[used], item_topic[used], popularity[used]
    return data, SyntheticLatents(taste, mixture, item_topic, popularity)


def _write_reviews(
    rng: np.random.Generator,
    cfg: SyntheticConfig,
    item: np.ndarray,
    rating: np.ndarray,
    mixture: np.ndarray,
    item_topic: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Review and summary text per row; all random choices are drawn as arrays first."""
    n, width = len(item), cfg.sentences_max
    n_sentences = rng.integers(cfg.sentences_min, cfg.sentences_max + 1, n)
    generic = rng.random((n, width)) < cfg.generic_sentence_prob
    cumulative = np.cumsum(mixture[item], axis=1)  # (N, K)
    topic = (rng.random((n, width, 1)) > cumulative[:, None, :]).sum(-1)  # (N, S)
    topic = np.minimum(topic, cfg.num_topics - 1)
    picks = rng.random((n, width, 3))  # template, noun, adjective
    positive = rating >= 3
    reviews, summaries = [], []
    for row in range(n):
        sentences = []
        for s in range(n_sentences[row]):
            t_pick, n_pick, a_pick = picks[row, s]
            if generic[row, s]:
                pool = GENERIC_POSITIVE if positive[row] else GENERIC_NEGATIVE
                sentences.append(pool[int(t_pick * len(pool))])
                continue
            _, nouns, good, poor, templates = TOPICS[topic[row, s]]
            adjectives = good if positive[row] else poor
            sentences.append(
                templates[int(t_pick * len(templates))].format(
                    noun=nouns[int(n_pick * len(nouns))],
                    adj=adjectives[int(a_pick * len(adjectives))],
                )
            )
        reviews.append(" ".join(sentences))
        nouns = TOPICS[item_topic[item[row]]][1]
        summaries.append(
            f"{SUMMARY_WORDS[int(rating[row]) - 1]} {nouns[int(picks[row, 0, 1] * len(nouns))]}"
        )
    return np.array(reviews, dtype=object), np.array(summaries, dtype=object)
