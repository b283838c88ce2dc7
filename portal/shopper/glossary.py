"""SAT's catalogue names with an English explanation, for shoppers who chose English.

The régimen and uso names are SAT's and stay as SAT writes them (they are what the Constancia and the invoice
say); an English reader gets what each means in brackets after it.
"""

from __future__ import annotations

from portal.shopper.messages import is_default_language

REGIMENES_EN = {
    "601": "companies, general regime", "603": "non-profit organisations", "605": "wages and salaries",
    "606": "rental income", "607": "sale or purchase of goods", "608": "other income",
    "610": "non-residents without a permanent establishment in Mexico", "611": "dividends",
    "612": "individuals with business or professional activities", "614": "interest income",
    "615": "prize income", "616": "no tax obligations", "620": "production cooperatives deferring income",
    "621": "tax incorporation regime", "622": "agriculture, livestock, forestry and fishing",
    "623": "optional regime for groups of companies", "624": "coordinated (transport) companies",
    "625": "business income through digital platforms", "626": "simplified trust regime (RESICO)",
}
USOS_EN = {
    "G01": "purchase of goods for resale", "G02": "returns, discounts or rebates", "G03": "general expenses",
    "I01": "construction", "I02": "office furniture and equipment", "I03": "transport equipment",
    "I04": "computer equipment", "I05": "dies, moulds and tools", "I06": "telephone communications",
    "I07": "satellite communications", "I08": "other machinery and equipment",
    "D01": "medical, dental and hospital expenses", "D02": "medical expenses for disability",
    "D03": "funeral expenses", "D04": "donations", "D05": "mortgage interest (home)",
    "D06": "voluntary retirement contributions", "D07": "medical insurance premiums",
    "D08": "compulsory school transport", "D09": "pension savings deposits", "D10": "school tuition",
    "S01": "no tax effects", "CP01": "payments", "CN01": "payroll",
}


def explained(code: str, name: str, glossary: dict[str, str]) -> str:
    """«name» as SAT writes it, plus its English meaning when the shopper reads English."""
    if is_default_language() or code not in glossary:
        return name
    return f"{name} ({glossary[code]})"


def regimen_name(code: str, name: str) -> str:
    return explained(code, name, REGIMENES_EN)


def uso_name(code: str, name: str) -> str:
    return explained(code, name, USOS_EN)
