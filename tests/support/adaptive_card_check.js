// Checks Adaptive Cards against the schema version Teams renders (1.5), as Microsoft's own
// renderer reads it: npm `adaptivecards` (pinned in package.json), whose object model declares
// every element, action and property with the schema version that brought it.
//
// stdin: a JSON array of cards. stdout: a JSON array, for each card the list of its problems
// (empty: the card is valid at 1.5). Three checks:
//   1. the renderer's parser at 1.5: unknown element and action types (also those newer than
//      1.5), values outside a property's set, properties newer than 1.5;
//   2. the renderer's own validation (`validateProperties`): required properties, duplicate ids,
//      too many actions and the like;
//   3. property names: every key of every typed object (the card, its elements, columns and
//      actions) is one the renderer knows for that type at 1.5; the parser alone ignores a
//      misspelt or made-up key. An action's `data` is the bot's own, free-form.
// The card's declared `version` must be 1.5 or older.
"use strict";

// The UMD bundle: the package's lib/ is ES modules without "type": "module".
const AC = require("adaptivecards/dist/adaptivecards.js");

const TARGET = AC.Versions.v1_5;
const FREE_FORM = new Set(["data"]);

function knownProperties(typeName) {
    let instance;
    if (typeName === "AdaptiveCard") {
        instance = new AC.AdaptiveCard();
    } else if (typeName === "Column") {
        instance = new AC.Column();
    } else {
        instance =
            AC.GlobalRegistry.elements.createInstance(typeName, TARGET) ||
            AC.GlobalRegistry.actions.createInstance(typeName, TARGET);
    }
    if (!instance) {
        return undefined;
    }
    const names = new Set(["type"]);
    // What the renderer parses itself rather than through its property list: the collections
    // of containers, column sets, action sets and rich text, a ShowCard's card, a fallback.
    if (typeof instance.getItemsCollectionPropertyName === "function") {
        names.add(instance.getItemsCollectionPropertyName());
    }
    if (instance instanceof AC.AdaptiveCard || instance instanceof AC.ActionSet) {
        names.add("actions");
    }
    if (instance instanceof AC.ColumnSet) {
        names.add("columns");
    }
    if (instance instanceof AC.RichTextBlock) {
        names.add("inlines");
    }
    if (instance instanceof AC.ShowCardAction) {
        names.add("card");
    }
    names.add(typeName === "AdaptiveCard" ? "$schema" : "fallback");
    const schema = instance.getSchema();
    for (let i = 0; i < schema.getCount(); i++) {
        const property = schema.getItemAt(i);
        if (property.isSerializationEnabled && property.targetVersion.compareTo(TARGET) <= 0) {
            names.add(property.name);
        }
    }
    return names;
}

function checkNames(node, path, problems) {
    if (Array.isArray(node)) {
        node.forEach((child, index) => checkNames(child, `${path}[${index}]`, problems));
        return;
    }
    if (node === null || typeof node !== "object") {
        return;
    }
    const typeName = typeof node.type === "string" ? node.type : undefined;
    const names = typeName ? knownProperties(typeName) : undefined;
    if (typeName && !names) {
        problems.push(`${path}: type "${typeName}" is not in Adaptive Cards ${TARGET}`);
    }
    for (const [key, value] of Object.entries(node)) {
        if (names && !names.has(key)) {
            problems.push(`${path}.${key}: not a property of ${typeName} in ${TARGET}`);
        }
        if (!FREE_FORM.has(key)) {
            checkNames(value, `${path}.${key}`, problems);
        }
    }
}

function eventsOf(count, eventAt) {
    const found = [];
    for (let i = 0; i < count; i++) {
        const event = eventAt(i);
        found.push(`${AC.ValidationEvent[event.event]}: ${event.message}`);
    }
    return found;
}

function check(card) {
    if (card === null || typeof card !== "object" || card.type !== "AdaptiveCard") {
        return ['not an Adaptive Card (no "type": "AdaptiveCard")'];
    }
    const problems = [];
    const context = new AC.SerializationContext(TARGET);
    const declared = AC.Version.parse(String(card.version), context);
    if (!declared || !declared.isValid || declared.compareTo(TARGET) > 0) {
        problems.push(`version "${card.version}": Teams renders ${TARGET} and older`);
    }
    const parsed = new AC.AdaptiveCard();
    parsed.parse(card, context);
    problems.push(...eventsOf(context.eventCount, (i) => context.getEventAt(i)));
    const validation = parsed.validateProperties();
    problems.push(
        ...eventsOf(validation.validationEvents.length, (i) => validation.validationEvents[i])
    );
    checkNames(card, "$", problems);
    return problems;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
    input += chunk;
});
process.stdin.on("end", () => {
    const cards = JSON.parse(input);
    process.stdout.write(JSON.stringify(cards.map(check)));
});
