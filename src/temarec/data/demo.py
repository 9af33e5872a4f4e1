"""A seeded synthetic two-domain world ("Food", "Kitchen") so the quickstart runs with no data at all.

The world has `K = len(DEMO_THEMES)` latent themes (baking, tea, bbq/grilling, ...). Every theme has a
hand-written Food vocabulary and a Kitchen vocabulary; every item belongs to one or two themes and its
title and one-sentence description are built from those themes' words. Item popularity is Zipf-like
within each theme.

Users hold a sparse Dirichlet preference over the themes that is *shared by both domains* (the
cross-domain signal) and drifts slowly along the sequence. Each next item comes from

* the previous item's theme (a sequential / Markov component), or a random theme (noise), or the
  user's current preference, sampled by popularity inside (domain, theme); and
* when the domain switches, often the previous item's *complement* in the other domain
  (matcha -> bamboo tea whisk, hickory wood chips -> smoker box, ...).

Guarantees (tested in tests/test_demo.py): same seed -> identical dataset; every user has between 8 and
40 interactions with at least 2 in each domain; no item repeats within a user's sequence; timestamps
are non-decreasing unix seconds at day resolution (ties happen); about 10% of items have neither title
nor description. The catalogue depends only on `(seed, n_items_a, n_items_b)`, so
`demo_item_themes` recovers the latent themes of the items of `generate_demo` with the same arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from temarec.data.dataset import CDDataset, make_items_frame
from temarec.data.ragged import Ragged

DOMAINS = ("Food", "Kitchen")
MIN_LEN, MAX_LEN = 8, 40
MIN_PER_DOMAIN = 2


@dataclass(frozen=True)
class _Theme:
    name: str
    food: tuple[str, ...]  # product heads
    food_mods: tuple[str, ...]
    kitchen: tuple[str, ...]
    kitchen_mods: tuple[str, ...]
    uses: tuple[str, ...]  # "perfect for ..." phrases for descriptions
    pairs: tuple[tuple[str, str], ...]  # complementary (food head, kitchen head)
    related: tuple[str, str]  # themes a second theme is usually drawn from


# fmt: off
_THEMES: tuple[_Theme, ...] = (
    _Theme(
        "baking",
        ("All-Purpose Flour", "Bread Flour", "Almond Flour", "Pure Vanilla Extract", "Baking Powder",
         "Active Dry Yeast", "Semi-Sweet Chocolate Chips", "Cake Mix", "Powdered Sugar", "Sourdough Starter",
         "Rainbow Sprinkles", "Cocoa Powder"),
        ("Unbleached", "Bakery-Style", "Double-Dutch", "Madagascar"),
        ("Stand Mixer", "Silicone Baking Mat", "Loaf Pan", "Bundt Pan", "Rolling Pin", "Cooling Rack",
         "Proofing Basket", "Cookie Cutters", "Piping Bag Kit", "Kitchen Scale", "Muffin Tin",
         "Pastry Brush"),
        ("Professional", "Non-Stick", "French", "Heavy-Duty"),
        ("homemade bread", "weekend cookies", "birthday cakes", "holiday baking"),
        (("Bread Flour", "Proofing Basket"), ("Sourdough Starter", "Proofing Basket"),
         ("Cake Mix", "Bundt Pan"),
         ("Rainbow Sprinkles", "Piping Bag Kit"), ("Active Dry Yeast", "Loaf Pan"),
         ("All-Purpose Flour", "Rolling Pin"), ("Semi-Sweet Chocolate Chips", "Cookie Cutters")),
        ("breakfast", "kids snacks"),
    ),
    _Theme(
        "asian cooking",
        ("Soy Sauce", "Toasted Sesame Oil", "Jasmine Rice", "Rice Noodles", "Miso Paste", "Fish Sauce",
         "Gochujang", "Nori Sheets", "Sushi Rice", "Rice Vinegar", "Sriracha Sauce", "Ramen Noodles"),
        ("Japanese", "Korean", "Thai", "Low-Sodium"),
        ("Carbon Steel Wok", "Rice Cooker", "Bamboo Steamer", "Sushi Making Kit", "Chopsticks",
         "Santoku Knife", "Ramen Bowls", "Wok Spatula", "Dumpling Press", "Mortar and Pestle"),
        ("Hand-Hammered", "Japanese-Style", "Flat-Bottom", "Traditional"),
        ("weeknight stir-fries", "homemade sushi", "ramen night", "dumpling parties"),
        (("Jasmine Rice", "Rice Cooker"), ("Sushi Rice", "Sushi Making Kit"),
         ("Nori Sheets", "Sushi Making Kit"),
         ("Ramen Noodles", "Ramen Bowls"), ("Soy Sauce", "Carbon Steel Wok"),
         ("Fish Sauce", "Mortar and Pestle")),
        ("tea", "healthy vegan"),
    ),
    _Theme(
        "coffee",
        ("Whole Bean Coffee", "Ground Coffee", "Espresso Beans", "Cold Brew Coffee", "Instant Coffee",
         "Coffee Pods", "Hazelnut Coffee Creamer", "Vanilla Coffee Syrup", "Decaf Coffee",
         "Single-Origin Ethiopian Coffee"),
        ("Dark Roast", "Medium Roast", "Fair Trade", "Colombian"),
        ("Burr Coffee Grinder", "French Press", "Pour-Over Dripper", "Espresso Machine", "Milk Frother",
         "Gooseneck Kettle", "Cold Brew Maker", "Coffee Mug Set", "Travel Mug", "Moka Pot"),
        ("Barista", "Insulated", "Borosilicate", "Stainless"),
        ("your morning cup", "espresso drinks", "cold brew at home", "slow weekend brewing"),
        (("Whole Bean Coffee", "Burr Coffee Grinder"), ("Espresso Beans", "Espresso Machine"),
         ("Cold Brew Coffee", "Cold Brew Maker"), ("Ground Coffee", "French Press"),
         ("Hazelnut Coffee Creamer", "Milk Frother"),
         ("Single-Origin Ethiopian Coffee", "Pour-Over Dripper")),
        ("breakfast", "baking"),
    ),
    _Theme(
        "tea",
        ("Matcha Green Tea Powder", "Earl Grey Tea", "Chamomile Herbal Tea", "Loose Leaf Oolong",
         "Jasmine Green Tea", "Chai Tea Latte Mix", "English Breakfast Tea", "Rooibos Tea", "Peppermint Tea",
         "Raw Honey", "Darjeeling Black Tea"),
        ("Ceremonial Grade", "Caffeine-Free", "First Flush", "Loose Leaf"),
        ("Bamboo Tea Whisk Set", "Cast Iron Teapot", "Glass Tea Infuser", "Electric Kettle", "Tea Cups",
         "Tea Storage Tins", "Matcha Bowl", "Honey Dipper", "Tea Strainer", "Gongfu Tea Set"),
        ("Japanese", "Temperature-Control", "Double-Wall", "Porcelain"),
        ("a calm afternoon cup", "iced tea", "matcha lattes", "slow evening rituals"),
        (("Matcha Green Tea Powder", "Bamboo Tea Whisk Set"), ("Matcha Green Tea Powder", "Matcha Bowl"),
         ("Loose Leaf Oolong", "Gongfu Tea Set"), ("Earl Grey Tea", "Glass Tea Infuser"),
         ("Raw Honey", "Honey Dipper"), ("Jasmine Green Tea", "Tea Strainer")),
        ("healthy vegan", "asian cooking"),
    ),
    _Theme(
        "healthy vegan",
        ("Chia Seeds", "Quinoa", "Plant-Based Protein Powder", "Nutritional Yeast", "Almond Butter",
         "Coconut Oil", "Hemp Hearts", "Flaxseed Meal", "Spirulina Powder", "Dried Goji Berries",
         "Kale Chips"),
        ("Vegan", "Keto", "Gluten-Free", "Sugar-Free"),
        ("High-Speed Blender", "Salad Spinner", "Spiralizer", "Glass Meal Prep Containers", "Juicer",
         "Air Fryer", "Nut Milk Bag", "Vegetable Chopper", "Sprouting Jar", "Food Dehydrator"),
        ("BPA-Free", "Compact", "Eco-Friendly", "Cold-Press"),
        ("smoothie bowls", "plant-based meals", "meal prep", "post-workout shakes"),
        (("Plant-Based Protein Powder", "High-Speed Blender"), ("Spirulina Powder", "Juicer"),
         ("Quinoa", "Glass Meal Prep Containers"), ("Kale Chips", "Food Dehydrator"),
         ("Almond Butter", "Nut Milk Bag"), ("Flaxseed Meal", "High-Speed Blender")),
        ("breakfast", "soup slow cooking"),
    ),
    _Theme(
        "bbq grilling",
        ("BBQ Sauce", "Dry Rub", "Hickory Wood Chips", "Beef Jerky", "Smoked Paprika", "Steak Seasoning",
         "Hot Sauce", "Chicken Marinade", "Mesquite Smoked Salt", "Brisket Rub", "Dill Pickles"),
        ("Texas-Style", "Kansas City", "Smoky", "Spicy"),
        ("Grill Brush", "Meat Thermometer", "Cast Iron Skillet", "Grill Tongs", "Smoker Box", "Basting Brush",
         "Grill Mat", "Rib Rack", "Meat Claws", "Charcoal Chimney Starter"),
        ("Heavy-Duty", "Wireless", "Extra-Long", "Pre-Seasoned"),
        ("backyard cookouts", "low-and-slow brisket", "game-day ribs", "summer grilling"),
        (("Hickory Wood Chips", "Smoker Box"), ("Brisket Rub", "Meat Thermometer"),
         ("BBQ Sauce", "Basting Brush"),
         ("Steak Seasoning", "Cast Iron Skillet"), ("Dry Rub", "Rib Rack"),
         ("Chicken Marinade", "Grill Tongs")),
        ("mexican", "cocktails"),
    ),
    _Theme(
        "kids snacks",
        ("Fruit Snacks", "Animal Crackers", "Applesauce Pouches", "Cheddar Crackers", "Granola Bars",
         "Juice Boxes", "Yogurt Melts", "Microwave Popcorn", "Pretzel Bites", "Gummy Bears",
         "Mini Rice Cakes"),
        ("Kid-Friendly", "Lunchbox", "Mixed Berry", "Toddler"),
        ("Bento Lunch Box", "Snack Cups", "Sippy Cups", "Kids Plates", "Popsicle Molds",
         "Reusable Food Pouches",
         "Popcorn Maker", "Sandwich Cutters", "Insulated Lunch Bag", "Kids Cooking Set"),
        ("Spill-Proof", "Colorful", "Dinosaur", "Unicorn"),
        ("school lunches", "after-school snacking", "road trips", "picky eaters"),
        (("Microwave Popcorn", "Popcorn Maker"), ("Applesauce Pouches", "Reusable Food Pouches"),
         ("Cheddar Crackers", "Snack Cups"), ("Juice Boxes", "Insulated Lunch Bag"),
         ("Fruit Snacks", "Bento Lunch Box"), ("Yogurt Melts", "Popsicle Molds")),
        ("breakfast", "baking"),
    ),
    _Theme(
        "italian",
        ("Spaghetti", "Extra Virgin Olive Oil", "Marinara Sauce", "Basil Pesto", "Parmigiano Reggiano",
         "Arborio Rice", "Balsamic Vinegar", "San Marzano Tomatoes", "Penne Rigate", "Pizza Flour",
         "Sun-Dried Tomatoes"),
        ("Italian", "Imported", "Bronze-Cut", "Aged"),
        ("Pasta Maker", "Pizza Stone", "Pizza Cutter Wheel", "Cheese Grater", "Pasta Pot with Strainer",
         "Olive Oil Dispenser", "Ravioli Mold", "Pizza Peel", "Garlic Press", "Spaghetti Measure"),
        ("Italian", "Cordierite", "Rotary", "Hand-Crank"),
        ("Sunday pasta", "homemade pizza night", "risotto", "family dinners"),
        (("Pizza Flour", "Pizza Stone"), ("Pizza Flour", "Pizza Peel"),
         ("Spaghetti", "Pasta Pot with Strainer"),
         ("Parmigiano Reggiano", "Cheese Grater"), ("Extra Virgin Olive Oil", "Olive Oil Dispenser"),
         ("Penne Rigate", "Pasta Maker")),
        ("soup slow cooking", "cocktails"),
    ),
    _Theme(
        "mexican",
        ("Corn Tortillas", "Salsa Verde", "Taco Seasoning", "Refried Beans", "Chipotle Peppers in Adobo",
         "Masa Harina", "Tortilla Chips", "Queso Dip", "Enchilada Sauce", "Dried Ancho Chiles",
         "Mexican Oregano"),
        ("Authentic", "Restaurant-Style", "Fire-Roasted", "Mild"),
        ("Tortilla Press", "Molcajete", "Tortilla Warmer", "Taco Holders", "Citrus Squeezer", "Comal Griddle",
         "Salsa Bowls", "Avocado Slicer", "Margarita Glasses", "Fajita Pan"),
        ("Cast Iron", "Handmade", "Volcanic Stone", "Festive"),
        ("taco Tuesday", "fresh guacamole", "homemade tortillas", "fajita night"),
        (("Masa Harina", "Tortilla Press"), ("Corn Tortillas", "Tortilla Warmer"),
         ("Salsa Verde", "Molcajete"),
         ("Taco Seasoning", "Taco Holders"), ("Tortilla Chips", "Salsa Bowls"),
         ("Enchilada Sauce", "Fajita Pan")),
        ("bbq grilling", "cocktails"),
    ),
    _Theme(
        "breakfast",
        ("Pancake Mix", "Maple Syrup", "Rolled Oats", "Crunchy Granola", "Strawberry Jam", "Peanut Butter",
         "Breakfast Cereal", "Waffle Mix", "Bagels", "Overnight Oats Mix", "Hash Browns"),
        ("Buttermilk", "Pure", "Honey Nut", "Whole Grain"),
        ("Waffle Maker", "Toaster", "Egg Cooker", "Griddle Pan", "Mason Jars", "Pancake Batter Dispenser",
         "Cereal Bowls", "Butter Dish", "Egg Poacher", "Juice Glasses"),
        ("Belgian", "2-Slice", "Electric", "Retro"),
        ("lazy Sunday brunch", "quick weekday breakfasts", "overnight oats", "family pancakes"),
        (("Waffle Mix", "Waffle Maker"), ("Pancake Mix", "Griddle Pan"),
         ("Pancake Mix", "Pancake Batter Dispenser"),
         ("Overnight Oats Mix", "Mason Jars"), ("Bagels", "Toaster"), ("Breakfast Cereal", "Cereal Bowls"),
         ("Hash Browns", "Griddle Pan")),
        ("baking", "coffee"),
    ),
    _Theme(
        "cocktails",
        ("Cocktail Bitters", "Simple Syrup", "Maraschino Cherries", "Margarita Mix", "Tonic Water",
         "Ginger Beer", "Bloody Mary Mix", "Cocktail Olives", "Grenadine", "Key Lime Juice", "Rimming Salt"),
        ("Craft", "Small-Batch", "Classic", "Spiced"),
        ("Cocktail Shaker Set", "Jigger", "Muddler", "Ice Cube Trays", "Whiskey Glasses", "Copper Mugs",
         "Bar Spoon", "Cocktail Strainer", "Wine Aerator", "Ice Bucket"),
        ("Mixologist", "Copper-Plated", "Crystal", "Large-Format"),
        ("happy hour at home", "holiday parties", "classic old fashioneds", "mocktails"),
        (("Ginger Beer", "Copper Mugs"), ("Cocktail Bitters", "Whiskey Glasses"),
         ("Margarita Mix", "Cocktail Shaker Set"), ("Simple Syrup", "Jigger"),
         ("Maraschino Cherries", "Bar Spoon"),
         ("Key Lime Juice", "Muddler"), ("Tonic Water", "Ice Cube Trays")),
        ("mexican", "bbq grilling"),
    ),
    _Theme(
        "soup slow cooking",
        ("Chicken Bone Broth", "Vegetable Stock", "Red Lentils", "Split Peas", "Bouillon Cubes",
         "Minestrone Soup Mix", "Dried Black Beans", "Pearl Barley", "Canned Chickpeas", "Chili Seasoning",
         "Beef Stew Seasoning"),
        ("Hearty", "Low-Sodium", "Slow-Simmered", "Homestyle"),
        ("Slow Cooker", "Dutch Oven", "Pressure Cooker", "Soup Ladle", "Immersion Blender", "Stock Pot",
         "Soup Bowls", "Freezer Containers", "Fine Mesh Strainer", "Wooden Spoons"),
        ("6-Quart", "Programmable", "Enameled", "Multi-Use"),
        ("cozy winter stews", "batch cooking", "weeknight chili", "freezer meals"),
        (("Beef Stew Seasoning", "Slow Cooker"), ("Chili Seasoning", "Slow Cooker"),
         ("Dried Black Beans", "Pressure Cooker"), ("Chicken Bone Broth", "Stock Pot"),
         ("Split Peas", "Immersion Blender"), ("Red Lentils", "Dutch Oven"),
         ("Vegetable Stock", "Soup Ladle")),
        ("italian", "healthy vegan"),
    ),
)

_BRANDS = (
    "Oakridge", "Sunleaf", "Kitchara", "Nordvik", "Bellacasa", "Harvest Lane", "Copperfield", "Mapleton",
    "Greenfold", "Bluestone", "Tidewell", "Aurelia", "Pinecrest", "Rosemont", "Ironbark", "Willowmere",
    "Lumina", "Calder & Co.", "Fieldstead", "Yumiko", "Sol y Sal", "Brightmoor", "Havenwood", "Zestique",
)
_FOOD_ADJ = ("Organic", "Premium", "Natural", "Non-GMO", "Artisan", "Gourmet", "Everyday", "Family Size")
_FOOD_SIZE = ("4 oz", "8 oz", "12 oz", "16 oz", "1 lb", "2 lb", "5 lb", "500 g", "32 fl oz",
              "Pack of 3", "Pack of 6", "Pack of 12")
_FOOD_QUALITY = ("rich, balanced flavor", "no artificial colors or flavors", "a short, clean ingredient list",
                 "bold taste in every batch", "small-batch freshness", "a resealable pantry bag")
_KITCHEN_MATERIAL = ("Stainless Steel", "Bamboo", "Ceramic", "Cast Iron", "Silicone", "Glass", "Acacia Wood",
                     "Enamel")
_KITCHEN_SUFFIX = ("Set", "with Lid", "2-Piece Set", "Set of 4", "Dishwasher Safe", "12-Inch", "Large",
                   "Black", "White", "Gift Box")
_KITCHEN_QUALITY = ("dishwasher safe", "easy to clean", "built to last", "compact for small kitchens",
                    "backed by a 2-year warranty", "comfortable to hold")
# fmt: on

DEMO_THEMES: tuple[str, ...] = tuple(t.name for t in _THEMES)
K = len(_THEMES)


@dataclass(frozen=True)
class _Catalogue:
    n_a: int
    n_b: int
    domain: np.ndarray  # int8 [N+1], -1 at 0
    themes: np.ndarray  # int64 [N+1, 2]: primary, secondary (-1 = none); row 0 = -1
    head: np.ndarray  # int64 [N+1]: index into the primary theme's head list of the item's domain
    weight: np.ndarray  # float [N+1]: popularity (0 at 0)
    complement: np.ndarray  # int64 [N+1]: a complementary item of the other domain (0 at 0)


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    cat, text, users = np.random.SeedSequence([int(seed), 0x7E3A]).spawn(3)
    return np.random.default_rng(cat), np.random.default_rng(text), np.random.default_rng(users)


def _check_sizes(n_users: int, n_items_a: int, n_items_b: int) -> None:
    if n_users < 1:
        raise ValueError("n_users must be >= 1")
    if min(n_items_a, n_items_b) < MAX_LEN:
        raise ValueError(f"each domain needs at least {MAX_LEN} items (the longest user sequence)")


def _make_catalogue(rng: np.random.Generator, n_a: int, n_b: int) -> _Catalogue:
    name_to_k = {t.name: k for k, t in enumerate(_THEMES)}
    related = np.array([[name_to_k[r] for r in t.related] for t in _THEMES], dtype=np.int64)
    n_heads = np.array([[len(t.food) for t in _THEMES], [len(t.kitchen) for t in _THEMES]], dtype=np.int64)
    parts = []
    for d, n in ((0, n_a), (1, n_b)):
        share = rng.dirichlet(np.full(K, 4.0))
        base = min(2, n // K)  # every theme gets items in every domain
        primary = np.concatenate([np.tile(np.arange(K), base), rng.choice(K, size=n - base * K, p=share)])
        primary = rng.permutation(primary)
        has2 = rng.random(n) < 0.35
        sec = np.where(
            rng.random(n) < 0.7,
            related[primary, rng.integers(0, related.shape[1], n)],
            (primary + rng.integers(1, K, n)) % K,
        )
        sec = np.where(has2, sec, -1)
        head = np.floor(rng.random(n) * n_heads[d, primary]).astype(np.int64)
        # Zipf-like popularity by a random rank inside each primary theme, with a little jitter
        order = np.lexsort((rng.random(n), primary))
        starts = np.searchsorted(primary[order], np.arange(K))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - starts[primary[order]]
        weight = (rank + 1.0) ** -1.05 * rng.lognormal(0.0, 0.25, n)
        parts.append((np.full(n, d), primary, sec, head, weight))
    pads = (-1, -1, -1, 0, 0.0)
    dom, prim, sec, head, weight = (np.concatenate([[p], a, b]) for p, a, b in zip(pads, *parts, strict=True))
    themes = np.stack([prim, sec], axis=1).astype(np.int64)
    complement = _complements(rng, dom, prim, head, weight)
    return _Catalogue(n_a, n_b, dom.astype(np.int8), themes, head.astype(np.int64), weight, complement)


def _complements(rng, dom, prim, head, weight) -> np.ndarray:
    """For every item, a popularity-drawn item of the other domain in its primary theme, preferring
    items whose head is a hand-written complement of its head (matcha -> tea whisk)."""
    comp = np.zeros(len(dom), dtype=np.int64)
    for k, t in enumerate(_THEMES):
        food_ix = {h: i for i, h in enumerate(t.food)}
        kit_ix = {h: i for i, h in enumerate(t.kitchen)}
        partners: list[dict[int, set[int]]] = [{}, {}]
        for f, kh in t.pairs:
            partners[0].setdefault(food_ix[f], set()).add(kit_ix[kh])
            partners[1].setdefault(kit_ix[kh], set()).add(food_ix[f])
        members = [np.flatnonzero((dom == d) & (prim == k)) for d in (0, 1)]
        for d in (0, 1):
            other = members[1 - d]
            for i in members[d]:
                want = partners[d].get(int(head[i]))
                cand = other
                if want:
                    paired = other[np.isin(head[other], list(want))]
                    if len(paired):
                        cand = paired
                comp[i] = rng.choice(cand, p=weight[cand] / weight[cand].sum())
    return comp


def _make_text(rng: np.random.Generator, cat: _Catalogue) -> tuple[list, list]:
    n = len(cat.domain) - 1
    r = rng.random((n, 8))
    pick = rng.integers(0, 1 << 30, size=(n, 8))
    no_text = rng.random(n) < 0.10
    no_desc = rng.random(n) < 0.05
    titles: list = []
    descs: list = []
    for j in range(n):
        i = j + 1
        if no_text[j]:
            titles.append(None)
            descs.append(None)
            continue
        t = _THEMES[cat.themes[i, 0]]
        s = cat.themes[i, 1]
        t2 = _THEMES[s] if s >= 0 else None
        rr, pp = r[j], pick[j]
        brand = _BRANDS[pp[0] % len(_BRANDS)]
        if cat.domain[i] == 0:
            head = t.food[cat.head[i]]
            mods = (t2 or t).food_mods
            words = [brand]
            if rr[0] < 0.55:
                words.append(_FOOD_ADJ[pp[1] % len(_FOOD_ADJ)])
            if t2 is not None or rr[1] < 0.4:
                words.append(mods[pp[2] % len(mods)])
            words.append(head)
            title = " ".join(words) + f", {_FOOD_SIZE[pp[3] % len(_FOOD_SIZE)]}"
            use = t.uses[pp[4] % len(t.uses)]
            if t2 is not None:
                use = f"{use} and {t2.uses[pp[5] % len(t2.uses)]}"
            quality = _FOOD_QUALITY[pp[6] % len(_FOOD_QUALITY)]
            form = pp[7] % 3
            if form == 0:
                desc = f"{head} from {brand} with {quality}, perfect for {use}."
            elif form == 1:
                desc = f"Stock your pantry with {brand} {head}: {quality}, great for {use}."
            else:
                kind = words[-2].lower() if len(words) > 2 else "pantry"
                desc = f"{_article(kind).capitalize()} {kind} favorite made for {use}."
        else:
            head = t.kitchen[cat.head[i]]
            mods = (t2 or t).kitchen_mods
            words = [brand]
            if t2 is not None or rr[0] < 0.35:
                words.append(mods[pp[1] % len(mods)])
            if rr[1] < 0.3:
                words.append(_KITCHEN_MATERIAL[pp[2] % len(_KITCHEN_MATERIAL)])
            words.append(head)
            if rr[2] < 0.5:
                words.append(_KITCHEN_SUFFIX[pp[3] % len(_KITCHEN_SUFFIX)])
            title = " ".join(words)
            use = t.uses[pp[4] % len(t.uses)]
            if t2 is not None:
                use = f"{use} and {t2.uses[pp[5] % len(t2.uses)]}"
            quality = _KITCHEN_QUALITY[pp[6] % len(_KITCHEN_QUALITY)]
            plural = head.endswith("s") and not head.endswith("ss")
            if pp[7] % 2 == 0:
                lead = "These" if plural else _article(head).capitalize()
                desc = f"{lead} {head.lower()} {'make' if plural else 'makes'} {use} easy; {quality}."
            else:
                desc = f"The {brand} {head.lower()} {'are' if plural else 'is'} {quality} and made for {use}."
        titles.append(title)
        descs.append(None if no_desc[j] else desc)
    return titles, descs


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _group_sampler(cat: _Catalogue):
    """Popularity sampling inside (domain, theme) groups, vectorised over users.

    An item belongs to the groups of both its themes (its secondary one at half weight). All groups are
    concatenated; group g's cumulative distribution is shifted by g, so one `searchsorted` of `g + u`
    samples every user from its own group."""
    ids = np.arange(1, len(cat.domain), dtype=np.int64)
    dom = cat.domain[1:].astype(np.int64)
    g1 = dom * K + cat.themes[1:, 0]
    has2 = cat.themes[1:, 1] >= 0
    g2 = dom[has2] * K + cat.themes[1:, 1][has2]
    grp = np.concatenate([g1, g2])
    mem = np.concatenate([ids, ids[has2]])
    w = np.concatenate([cat.weight[1:], 0.5 * cat.weight[1:][has2]])
    order = np.argsort(grp, kind="stable")
    grp, mem, w = grp[order], mem[order], w[order]
    bounds = np.searchsorted(grp, np.arange(2 * K + 1))
    cum = np.cumsum(w)
    start_cum = np.concatenate([[0.0], cum])[bounds[:-1]]
    total = cum[bounds[1:] - 1] - start_cum
    cdf = grp + (cum - start_cum[grp]) / total[grp]
    cdf[bounds[1:] - 1] = np.arange(1, 2 * K + 1)  # exact group ends

    def sample(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = g + rng.random(len(g))
        return mem[np.minimum(np.searchsorted(cdf, u, side="right"), len(mem) - 1)]

    return sample


def _make_sequences(rng: np.random.Generator, cat: _Catalogue, n_users: int):
    U = n_users
    n_items = len(cat.domain) - 1
    item_dom = cat.domain.astype(np.int64)

    # lengths 8..40, skewed towards short
    lengths = np.minimum(MIN_LEN + np.floor(rng.gamma(1.6, 7.5, U)).astype(np.int64), MAX_LEN)
    T = int(lengths.max())
    valid = np.arange(T)[None, :] < lengths[:, None]

    # domain per step: a sticky two-state chain around the user's Food share, then >= 2 per domain
    p_food = np.clip(rng.beta(3.0, 2.5, U), 0.15, 0.85)
    fresh = (rng.random((U, T)) >= p_food[:, None]).astype(np.int64)
    stay = rng.random((U, T)) < 0.5
    stay[:, 0] = False
    # value at t = fresh at the last non-stay step <= t
    last_fresh = np.maximum.accumulate(np.where(stay, 0, np.arange(T)[None, :]), axis=1)
    dom = np.take_along_axis(fresh, last_fresh, axis=1)
    for d in (0, 1):
        need = np.maximum(0, MIN_PER_DOMAIN - ((dom == d) & valid).sum(1))
        if need.any():
            pri = np.where(valid & (dom != d), rng.random((U, T)), np.inf)
            rank = np.argsort(np.argsort(pri, axis=1), axis=1)
            dom[rank < need[:, None]] = d

    # sparse shared theme preferences with slow drift
    def dirichlet(alpha: float) -> np.ndarray:
        g = rng.gamma(alpha, 1.0, (U, K)) + 1e-12
        return g / g.sum(1, keepdims=True)

    theta0, theta1 = dirichlet(0.15), dirichlet(0.15)
    drift = rng.uniform(0.0, 0.6, U)

    sample = _group_sampler(cat)
    seq = np.zeros((U, T), dtype=np.int64)
    seen = np.zeros((U, n_items + 1), dtype=bool)
    prev = np.zeros(U, dtype=np.int64)
    p_markov, p_noise, p_comp = 0.35, 0.08, 0.4
    for t in range(T):
        act = np.flatnonzero(lengths > t)
        m = len(act)
        d = dom[act, t]
        w = (drift[act] * t / np.maximum(lengths[act] - 1, 1))[:, None]
        theta = (1.0 - w) * theta0[act] + w * theta1[act]
        cum = np.cumsum(theta, axis=1)
        k = np.minimum((cum < rng.random(m)[:, None] * cum[:, -1:]).sum(1), K - 1)
        r = rng.random(m)
        k = np.where(r < p_markov + p_noise, rng.integers(0, K, m), k)
        if t > 0:
            pt = cat.themes[prev[act]]
            k_prev = np.where((pt[:, 1] >= 0) & (rng.random(m) < 0.25), pt[:, 1], pt[:, 0])
            k = np.where(r < p_markov, k_prev, k)
        g = d * K + k
        cand = sample(g, rng)
        if t > 0:
            c = cat.complement[prev[act]]
            use = (d != dom[act, t - 1]) & (rng.random(m) < p_comp) & ~seen[act, c]
            cand[use] = c[use]
        bad = seen[act, cand]
        for _ in range(30):
            if not bad.any():
                break
            ix = np.flatnonzero(bad)
            cand[ix] = sample(g[ix], rng)
            bad[ix] = seen[act[ix], cand[ix]]
        if bad.any():  # rare: fall back to a uniformly random unseen item of the domain
            ix = np.flatnonzero(bad)
            score = rng.random((len(ix), n_items + 1))
            score[seen[act[ix]] | (item_dom[None, :] != d[ix, None])] = -1.0
            cand[ix] = score.argmax(1)
        seq[act, t] = cand
        seen[act, cand] = True
        prev[act] = cand

    # timestamps: day resolution, gaps of 0 (ties) or more days
    day0 = rng.integers(17897, 19174, U)  # 2019-01-01 .. 2022-07-01
    gaps = rng.geometric(0.12, (U, T)) - 1
    gaps[:, 0] = 0
    days = day0[:, None] + np.cumsum(gaps, axis=1)
    return Ragged.from_lengths(lengths, seq[valid]), Ragged.from_lengths(lengths, days[valid] * 86400)


def generate_demo(
    seed: int = 0, n_users: int = 2000, n_items_a: int = 800, n_items_b: int = 700, name: str = "demo"
) -> CDDataset:
    """A synthetic Food/Kitchen world with shared latent themes (see the module docstring)."""
    _check_sizes(n_users, n_items_a, n_items_b)
    cat_rng, text_rng, user_rng = _rngs(seed)
    cat = _make_catalogue(cat_rng, n_items_a, n_items_b)
    titles, descs = _make_text(text_rng, cat)
    keys = [f"F{i:06d}" for i in range(1, n_items_a + 1)] + [f"K{i:06d}" for i in range(1, n_items_b + 1)]
    items = make_items_frame(keys, cat.domain[1:], titles, descs)
    seqs, ts = _make_sequences(user_rng, cat, n_users)
    width = max(5, len(str(n_users)))
    user_keys = np.array([f"U{u:0{width}d}" for u in range(1, n_users + 1)])
    return CDDataset(
        name=name,
        domains=DOMAINS,
        items=items,
        user_keys=user_keys,
        sequences=seqs,
        timestamps=ts,
        source="temarec.data.demo",
        notes={"generator": "temarec demo", "seed": seed},
    )


def demo_item_themes(seed: int = 0, n_items_a: int = 800, n_items_b: int = 700) -> np.ndarray:
    """The latent themes of `generate_demo(seed, ..., n_items_a, n_items_b)`'s items.

    int64 [N+1, 2]: row = global item id, columns (primary theme, secondary theme or -1); row 0 is -1.
    Theme k is named `DEMO_THEMES[k]`."""
    _check_sizes(1, n_items_a, n_items_b)
    return _make_catalogue(_rngs(seed)[0], n_items_a, n_items_b).themes.copy()
