"""Label sets, message templates and reply templates of the support-ticket sample data.

Message templates use the slots {order}, {product}, {amount} and {date}; `generate` fills
them. Each category has TRAIN templates and three HELD_OUT ones: rows built from a held-out
template become the pinned test rows, so evaluation measures new phrasings, not memory.
Held-out templates still use the category's key words (refund, package, log in, ...).
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "billing",
    "refund",
    "shipping",
    "returns",
    "account_access",
    "technical_issue",
    "product_inquiry",
    "cancellation",
    "order_change",
    "complaint",
)
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")

TRAIN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for order {order}.",
        "Why is there a charge of {amount} on my statement? I don't recognise it.",
        "My invoice from {date} shows {amount} but my plan should be cheaper than that.",
        "I think I was billed twice this month. Can you check my payment history?",
        "The payment for order {order} went through twice on my card.",
        "Can I get a copy of the invoice for order {order}? I need it for my expenses.",
        "I was billed {amount} for the {product} but the price on the site was lower.",
        "Your system keeps charging me even though I updated my payment method.",
        "There's an extra fee on my bill that nobody explained to me.",
        "Please add our VAT number to the invoices on my account.",
        "Billing question: why did my monthly charge go up to {amount}?",
        "My payment failed on {date} but the money still left my bank account. Can you check"
        " whether the charge for order {order} actually went through?",
    ),
    "refund": (
        "I'd like a refund for order {order}.",
        "I returned the {product} two weeks ago and still haven't got my money back.",
        "When will my refund of {amount} be processed?",
        "Can I get my money back? The {product} stopped working after two days.",
        "You promised a refund on {date} and it never arrived.",
        "Please refund the {amount} for order {order}, the item never showed up.",
        "How long does it take for a refund to show up on my card?",
        "I was told I'd be reimbursed for the damaged {product}. Where is my refund?",
        "Refund request for order {order}: the product was not as described.",
        "I want my money back for the subscription months I never used.",
        "My refund status has said pending for ten days now.",
        "I cancelled order {order} before it shipped, so I expect a full refund of {amount}.",
    ),
    "shipping": (
        "Where is my package? Order {order} was supposed to arrive on {date}.",
        "The tracking number for order {order} hasn't updated in five days.",
        "My delivery says delivered but there's no package at my door.",
        "Has order {order} shipped yet?",
        "The courier left my package at the wrong address.",
        "Tracking shows my {product} is stuck in transit.",
        "Do you ship to Canada, and how long does delivery usually take?",
        "I paid for express shipping but the package is still not here.",
        "Can you send me the tracking link for my order?",
        "The delivery driver never showed up on {date}.",
        "The package for order {order} shows as returned to sender. Why?",
        "I'm still waiting on my delivery. It has been two weeks since I ordered the {product}"
        " and the tracking page just says label created.",
    ),
    "returns": (
        "How do I return the {product}?",
        "I need a return label for order {order}.",
        "Can I send back the {product}? It doesn't fit.",
        "What's your returns policy for opened items?",
        "I'd like to exchange the {product} for a different one. How does the return work?",
        "I dropped off the return for order {order} on {date}. Did you receive it?",
        "The return label you sent me doesn't scan at the post office.",
        "Is it too late to return something I bought on {date}?",
        "I want to return part of order {order}, just the {product}.",
        "Where do I send returns? The address on the slip looks wrong.",
        "Can I return a gift without the receipt?",
        "I started a return online for the {product} but the page stopped halfway through. Is"
        " my return still open or do I need to start again?",
    ),
    "account_access": (
        "I can't log in to my account.",
        "I forgot my password and the reset link never arrives.",
        "My account is locked after too many login attempts.",
        "The two-factor code isn't working, so I'm locked out.",
        "I changed my email address and now I can't sign in.",
        "The password reset says the link has expired every time.",
        "I'm locked out of my account. How do I get back in?",
        "The login page keeps saying wrong password even though I just reset it.",
        "Someone may have accessed my account, the password was changed without me.",
        "I can't sign in with Google anymore, it says the account doesn't exist.",
        "How do I unlock my account?",
        "I've tried logging in from the app and the website since {date}, and both say my"
        " credentials are invalid. I haven't changed my password.",
    ),
    "technical_issue": (
        "The app crashes every time I open it.",
        "I get an error when I try to check out.",
        "The {product} won't connect to the app.",
        "Your website shows a blank page after the home screen loads.",
        "The app freezes on the loading screen.",
        "I get error 500 when I upload a file.",
        "My {product} keeps disconnecting from wifi.",
        "The sync between my phone and the {product} stopped working on {date}.",
        "Bug report: the search bar doesn't return any results.",
        "The app keeps crashing after the latest update.",
        "Notifications aren't working on Android.",
        "I'm seeing an error message that says something went wrong whenever I save my"
        " settings. I've cleared the cache and reinstalled the app but it still happens.",
    ),
    "product_inquiry": (
        "Is the {product} compatible with iPhone?",
        "Does the {product} come with a warranty?",
        "What are the dimensions of the {product}?",
        "When will the {product} be back in stock?",
        "Is there a bigger version of the {product}?",
        "What's the difference between the {product} and the older model?",
        "Does the {product} work outside the US?",
        "Can you tell me what material the {product} is made from?",
        "Do you sell replacement parts for the {product}?",
        "How long does the battery on the {product} last?",
        "Is the {product} dishwasher safe?",
        "I'm thinking about buying the {product} as a gift. Does it come in other colours,"
        " and is there a discount if I buy two?",
    ),
    "cancellation": (
        "I want to cancel my subscription.",
        "Please cancel my membership at the end of this month.",
        "How do I cancel my plan? I can't find the option.",
        "Cancel order {order}, please.",
        "I'd like to stop my subscription from renewing automatically.",
        "Please end my subscription and confirm by email.",
        "Can I cancel order {order} before it ships?",
        "I'm moving abroad and need to cancel my subscription.",
        "Turn off auto-renew on my plan, I don't want to be charged again.",
        "I signed up for the free trial and want to cancel before it converts on {date}.",
        "How can I cancel the premium plan?",
        "I've decided to cancel. The service is fine but I no longer need it, so please close"
        " my subscription and let me know it's done.",
    ),
    "order_change": (
        "Can I change the delivery address on order {order}?",
        "I ordered the wrong size, can you change it to a medium?",
        "Please update the shipping address for my order.",
        "Can I add another {product} to order {order}?",
        "I need to change the colour of the {product} I ordered.",
        "Is it possible to change my order before it ships?",
        "Please remove the {product} from order {order}.",
        "I made a typo in my address on order {order}. The apartment number is wrong.",
        "Can I switch to express delivery on my existing order?",
        "Change the quantity on my order from two to one, please.",
        "I'd like to swap the {product} in my order for the black one.",
        "I placed order {order} on {date} and just realised I picked the large instead of the"
        " small. Can you change the size before it is packed?",
    ),
    "complaint": (
        "This is the worst customer service I've ever experienced.",
        "I'm very disappointed with the quality of the {product}.",
        "Your support agent was rude to me on the phone.",
        "I want to make a formal complaint about how order {order} was handled.",
        "I've contacted you three times and nobody has replied. This is unacceptable.",
        "The {product} looks nothing like the photos on your website. Really disappointed.",
        "I'd like to speak to a manager about the terrible service.",
        "Your company keeps making promises and never keeping them.",
        "I'm unhappy with how my last complaint was dismissed.",
        "Terrible experience from start to finish with order {order}.",
        "I'm writing to complain about the delivery driver's behaviour on {date}.",
        "I have been a loyal customer for years, and the way I was treated this week is"
        " unacceptable. Nobody took responsibility and I feel ignored.",
    ),
}

HELD_OUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "My bank statement shows two identical charges of {amount} from you. Please explain"
        " this billing.",
        "The invoice for order {order} lists the wrong billing address and amount.",
        "Could someone explain the charge on my latest bill? It doesn't match what I agreed"
        " to pay.",
    ),
    "refund": (
        "The refund for order {order} still hasn't reached my account. Where is my money?",
        "I'm asking for my money back on the {product}, it was faulty out of the box.",
        "Was my refund approved? I sent the request on {date} and heard nothing.",
    ),
    "shipping": (
        "My package hasn't shown up and the tracking for order {order} says out for delivery"
        " since {date}.",
        "Can you check on the delivery of my {product}? The estimate keeps moving.",
        "No package yet. Which courier is handling the delivery for order {order}?",
    ),
    "returns": (
        "I'd like to send the {product} back. Can you email me a return label?",
        "Do you accept returns after 30 days? Order {order} arrived late.",
        "What are the steps to return an item from order {order}?",
    ),
    "account_access": (
        "Every time I try to log in it asks for a verification code that never comes. I'm"
        " stuck outside my account.",
        "My password doesn't work anymore and I can't get into my account.",
        "Could you reset my login? The account has been locked since {date}.",
    ),
    "technical_issue": (
        "Since the update the app crashes as soon as I tap the cart.",
        "The {product} shows an error light and won't pair with my phone.",
        "I keep getting a timeout error on the dashboard and nothing loads.",
    ),
    "product_inquiry": (
        "Quick question about the {product}: which accessories are included in the box?",
        "Before I order, can the {product} be used with a 220V plug?",
        "Is the {product} in stock, and where can I find its specs?",
    ),
    "cancellation": (
        "Please stop my subscription. I don't want it to renew on {date}.",
        "I want to cancel order {order}, I ordered the wrong {product}.",
        "How do I end my membership? The cancel button in the app does nothing.",
    ),
    "order_change": (
        "Could you edit order {order}? I need the address changed to my work address.",
        "I'd like to modify my order and change the {product} to a different size.",
        "Please update order {order}: wrong colour selected, I want the blue one.",
    ),
    "complaint": (
        "I am really unhappy with your service and want to file a complaint.",
        "Very disappointed. The {product} broke within a week and your team was unhelpful.",
        "Your staff were unprofessional and I expect an apology for how order {order} was handled.",
    ),
}

# Categories whose tickets often quote an order number even when the template has none.
ORDER_CATEGORIES: frozenset[str] = frozenset(
    {"billing", "refund", "shipping", "returns", "cancellation", "order_change", "complaint"}
)

# First replies: category -> (with an order number, without one). {for_product} and
# {about_product} become " for the <product>" / " about the <product>" when the message
# names a product, else "". The reply is a pure
# function of category, priority and the slots, so a model can learn it exactly.
REPLIES: dict[str, tuple[str, str]] = {
    "billing": (
        "I'm checking the charges on order {order} with our billing team.",
        "I'm checking the charges on your account; please send the order number.",
    ),
    "refund": (
        "I've opened a refund review{for_product} on order {order}.",
        "I've opened a refund review{for_product}; please reply with your order number.",
    ),
    "shipping": (
        "I've asked the courier for a status update on order {order}.",
        "I'm checking the delivery status; could you share your order number?",
    ),
    "returns": (
        "I've started a return{for_product} on order {order} and will email you a label.",
        "I can start your return{for_product}; please send the order number for a label.",
    ),
    "account_access": (
        "I've sent a secure reset link to your account email.",
        "I've sent a secure reset link to your account email.",
    ),
    "technical_issue": (
        "I've logged this{for_product} with our tech team; please restart the app meanwhile.",
        "I've logged this{for_product} with our tech team; please restart the app meanwhile.",
    ),
    "product_inquiry": (
        "thanks for your question{about_product}; I've attached the product details.",
        "thanks for your question{about_product}; I've attached the product details.",
    ),
    "cancellation": (
        "I've cancelled order {order}; a confirmation email is on its way.",
        "I've scheduled your cancellation; a confirmation email is on its way.",
    ),
    "order_change": (
        "I've updated order {order} with your requested change{for_product}.",
        "I can make that change{for_product}; please send the order number before it ships.",
    ),
    "complaint": (
        "I'm sorry about order {order}; I've passed this to our care manager.",
        "I'm sorry about your experience{about_product}; I've passed this to our care manager.",
    ),
}

PRIORITY_CLAUSES: dict[str, str] = {
    "low": "We'll reply within 3 business days.",
    "medium": "We'll reply within one business day.",
    "high": "I've marked this as high priority.",
    "urgent": "I've flagged this as urgent and escalated it.",
}
