"""Text that looks like what people write into office forms, for synthetic training lines."""

from __future__ import annotations

import datetime
import random
import string
from collections.abc import Callable

from faker import Faker

LOCALES = ("en_US", "en_GB", "en_CA", "en_AU", "en_IE", "en_NZ", "fr_FR", "de_DE", "es_ES", "it_IT")
LOCALE_WEIGHTS = (30, 20, 8, 8, 5, 4, 8, 5, 6, 6)

TICK_WORDS = (
    "Yes",
    "No",
    "N/A",
    "Male",
    "Female",
    "Other",
    "Single",
    "Married",
    "Divorced",
    "Widowed",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "Employed",
    "Self-employed",
    "Unemployed",
    "Retired",
    "Student",
    "Cash",
    "Cheque",
    "Card",
    "Transfer",
    "Approved",
    "Rejected",
    "Pending",
    "Urgent",
    "Signed",
    "None",
    "See attached",
    "Same as above",
    "Not applicable",
    "Unknown",
    "Other (please specify)",
)
FIELD_LABELS = (
    "Name",
    "Surname",
    "First name",
    "Address",
    "Town",
    "City",
    "Postcode",
    "ZIP",
    "Phone",
    "Tel",
    "Mobile",
    "Email",
    "Date",
    "DOB",
    "Date of birth",
    "Ref",
    "Reference",
    "Amount",
    "Total",
    "Signature",
    "Occupation",
    "Employer",
    "Account no",
    "Policy no",
    "Claim no",
    "Invoice",
    "Country",
    "Nationality",
    "Notes",
    "Comments",
    "Reason",
    "Qty",
    "Price",
    "Case",
    "ID",
)
MONTHS = ("January February March April May June July August September October November December").split()
CURRENCIES = ("$", "£", "€", "USD ", "EUR ", "GBP ", "")


def _stable_order(faker: Faker) -> None:
    """Sort provider word lists that Faker builds from sets (it_IT's cities): a set's order changes
    with each process's string-hash seed, and the same seed must give the same lines everywhere."""
    for provider in faker.providers:
        cities = getattr(provider, "cities", None)
        if isinstance(cities, list):
            provider.cities = sorted(cities)


class FormTextGenerator:
    """Random form-field strings: names, addresses, dates, phones, amounts, e-mails, references, prose."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers = [Faker(locale) for locale in LOCALES]
        for index, faker in enumerate(self.fakers):
            faker.seed_instance(seed * 101 + index)
            _stable_order(faker)
        self.kinds: list[tuple[Callable[[], str], int]] = [
            (self.name, 14),
            (self.street, 10),
            (self.city_line, 8),
            (self.date, 12),
            (self.phone, 7),
            (self.amount, 7),
            (self.email, 6),
            (self.reference, 7),
            (self.tick_word, 4),
            (self.prose, 14),
            (self.labelled_field, 10),
            (self.numbers, 4),
            (self.job_or_company, 5),
        ]

    @property
    def faker(self) -> Faker:
        return self.rng.choices(self.fakers, LOCALE_WEIGHTS)[0]

    def line(self, max_chars: int = 80) -> str:
        """One line of text, at most ``max_chars`` characters, sometimes two fields joined."""
        kinds, weights = zip(*self.kinds)
        text = self.rng.choices(kinds, weights)[0]()
        while self.rng.random() < 0.3 and len(text) < max_chars:
            text = f"{text}{self.rng.choice([', ', ' ', ' - ', '; ', ' / '])}{self.rng.choices(kinds, weights)[0]()}"
        text = " ".join(text.split())
        if len(text) > max_chars:
            cut = text.rfind(" ", 0, max_chars)
            text = text[: cut if cut > max_chars // 2 else max_chars].rstrip()
        return text or "Yes"

    def name(self) -> str:
        faker, roll = self.faker, self.rng.random()
        if roll < 0.3:
            return faker.name()
        if roll < 0.5:
            return f"{faker.last_name().upper()} {faker.first_name()}"
        if roll < 0.65:
            return f"{faker.last_name()}, {faker.first_name()}"
        if roll < 0.8:
            return f"{faker.first_name()[0]}. {faker.last_name()}"
        return faker.first_name() if roll < 0.9 else faker.last_name()

    def street(self) -> str:
        faker = self.faker
        return faker.street_address() if self.rng.random() < 0.8 else faker.address().replace("\n", ", ")

    def city_line(self) -> str:
        faker, roll = self.faker, self.rng.random()
        if roll < 0.4:
            return f"{faker.city()} {faker.postcode()}"
        if roll < 0.7:
            return f"{faker.postcode()} {faker.city()}"
        return faker.city() if roll < 0.85 else faker.country()

    def date(self) -> str:
        faker = self.faker
        # Fixed bounds, not "-90y" from today: the same seed must give the same lines on any day.
        day = faker.date_between(start_date=datetime.date(1936, 1, 1), end_date=datetime.date(2031, 12, 31))
        formats = (
            "%d/%m/%Y",
            "%m/%d/%Y",
            "%d.%m.%Y",
            "%Y-%m-%d",
            "%d-%m-%y",
            "%d/%m/%y",
            "%d %B %Y",
            "%B %d, %Y",
            "%d %b %Y",
            "%b %d %Y",
            "%A %d %B",
            "%d %b",
            "%m/%y",
        )
        text = day.strftime(self.rng.choice(formats))
        if self.rng.random() < 0.3:
            text = text.lstrip("0")
        return text

    def phone(self) -> str:
        faker, roll = self.faker, self.rng.random()
        if roll < 0.7:
            return faker.phone_number()
        digits = "".join(self.rng.choice(string.digits) for _ in range(10))
        return f"{digits[:3]} {digits[3:6]} {digits[6:]}" if roll < 0.85 else f"+44 {digits[:4]} {digits[4:]}"

    def amount(self) -> str:
        value = self.rng.choice([self.rng.uniform(1, 100), self.rng.uniform(10, 5000), self.rng.uniform(100, 250000)])
        currency = self.rng.choice(CURRENCIES)
        if self.rng.random() < 0.5:
            body = f"{value:,.2f}"
        elif self.rng.random() < 0.5:
            body = f"{value:.2f}"
        else:
            body = f"{int(value):,}"
        if currency == "€" and self.rng.random() < 0.5:
            return f"{body.replace(',', ' ').replace('.', ',')} €"
        return f"{currency}{body}"

    def email(self) -> str:
        faker = self.faker
        return faker.email() if self.rng.random() < 0.7 else faker.free_email()

    def reference(self) -> str:
        rng = self.rng
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(1, 4)))
        digits = "".join(rng.choice(string.digits) for _ in range(rng.randint(3, 9)))
        shapes = (
            f"{letters}-{digits}",
            f"{letters}{digits}",
            f"No. {digits}",
            f"#{digits}",
            f"{letters}/{digits[:4]}/{rng.randint(1, 99):02d}",
            f"{digits[:3]}-{digits[3:]}",
            self.faker.bothify("??##-####-??").upper(),
        )
        return rng.choice(shapes)

    def tick_word(self) -> str:
        return self.rng.choice(TICK_WORDS)

    def prose(self) -> str:
        # Only en_US and fr_FR have real word lists; the other locales would produce lorem ipsum.
        faker = self.fakers[LOCALES.index("fr_FR" if self.rng.random() < 0.15 else "en_US")]
        sentence = faker.sentence(nb_words=self.rng.randint(3, 14))
        if self.rng.random() < 0.2:
            sentence = sentence.lower()
        return sentence

    def labelled_field(self) -> str:
        label = self.rng.choice(FIELD_LABELS)
        value = self.rng.choice([self.name, self.date, self.phone, self.amount, self.reference, self.city_line])()
        separator = self.rng.choice([": ", " ", ":", " - "])
        return f"{label}{separator}{value}"

    def numbers(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.4:
            return str(rng.randint(0, 10 ** rng.randint(1, 8)))
        if roll < 0.7:
            return f"{rng.randint(1, 31)} {rng.choice(MONTHS)}"
        return f"{rng.randint(1, 999)} x {rng.randint(1, 99)} = {rng.randint(1, 9999)}"

    def job_or_company(self) -> str:
        faker = self.faker
        return faker.job() if self.rng.random() < 0.5 else faker.company()
